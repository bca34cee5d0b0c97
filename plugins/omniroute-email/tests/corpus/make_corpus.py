# ruff: noqa: E501  (messages are data: one line each reads best)
"""Writes the corpus of awkward, real-world-shaped messages beside this file (run it
again after changing it: `python make_corpus.py`). A name starting with `ignored-` must
be recorded as not answered (with a reason); every other one must become an interaction.
"""

from __future__ import annotations

import base64
from pathlib import Path

HERE = Path(__file__).parent
CORPUS: dict[str, bytes] = {}


def add(name: str, text: str | bytes) -> None:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    CORPUS[name] = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


H = "From: Carla <carla@example.org>\nTo: support@shop.example\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n"


def simple(name: str, subject: str, body: str, extra: str = "", ctype: str = "") -> None:
    ct = ctype or 'Content-Type: text/plain; charset="utf-8"\n'
    add(name, f"{H}Subject: {subject}\nMessage-ID: <{name}@example.org>\n{extra}{ct}\n{body}\n")


# ---------------------------------------------------------------- plain, charsets
simple("plain-ascii.eml", "Order 1", "Where is my order?")
simple("plain-utf8.eml", "Café", "Ça marche pas, über schlecht, 日本語")
add(
    "latin1-declared.eml",
    (H + "Subject: Caf=E9\nContent-Type: text/plain; charset=iso-8859-1\n\n").encode()
    + "Réponse".encode("latin-1")
    + b"\n",
)
add(
    "cp1252-declared-latin1.eml",
    (H + "Subject: quotes\nContent-Type: text/plain; charset=iso-8859-1\n\n").encode()
    + b"\x93smart quotes\x94 \x80 euro\n",
)
add(
    "unknown-charset.eml",
    (H + "Subject: x\nContent-Type: text/plain; charset=x-unknown-klingon\n\n").encode()
    + "Grüße".encode()
    + b"\n",
)
add(
    "wrong-charset-utf8-says-ascii.eml",
    (H + "Subject: mislabelled\nContent-Type: text/plain; charset=us-ascii\n\n").encode()
    + "naïve café".encode()
    + b"\n",
)
add(
    "no-charset-8bit.eml",
    (
        H + "Subject: bare 8bit\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\n"
    ).encode()
    + b"caf\xe9 \xff\xfe\n",
)
add(
    "utf8-invalid-bytes.eml",
    (H + "Subject: bad utf8\nContent-Type: text/plain; charset=utf-8\n\n").encode()
    + b"ok \xc3\x28 bad \xed\xa0\x80 end\n",
)
add(
    "koi8r.eml",
    (H + "Subject: =?koi8-r?B?8NLJ18XU?=\nContent-Type: text/plain; charset=koi8-r\n\n").encode()
    + "Привет мир".encode("koi8-r")
    + b"\n",
)
add(
    "shift-jis.eml",
    (
        H
        + "Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\nContent-Type: text/plain; charset=shift_jis\n\n"
    ).encode()
    + "注文について".encode("shift_jis")
    + b"\n",
)
add(
    "gb2312-mislabelled-gbk.eml",
    (H + "Subject: order\nContent-Type: text/plain; charset=gb2312\n\n").encode()
    + "订单问题 镕".encode("gbk")
    + b"\n",
)
add(
    "utf16-body.eml",
    (
        H
        + "Subject: utf16\nContent-Type: text/plain; charset=utf-16\nContent-Transfer-Encoding: base64\n\n"
    ).encode()
    + base64.encodebytes("Hello in UTF-16".encode("utf-16")),
)
add(
    "8bit-in-subject.eml",
    b"From: Carla <carla@example.org>\r\nTo: support@shop.example\r\nSubject: R\xe9clamation \xc3\xa9t\xc3\xa9\r\n\r\nbody\r\n",
)
add(
    "8bit-in-from-name.eml",
    b"From: J\xc3\xbcrgen M\xfcller <juergen@example.de>\r\nTo: support@shop.example\r\nSubject: hi\r\n\r\nbody\r\n",
)
add(
    "encoded-word-broken.eml",
    H.replace("Carla", "=?utf-8?B?QnJva2VuIWJhc2U2NA?=")
    + "Subject: =?utf-8?Q?caf=C3=A9_=ZZ?= =?unknown?B?AAAA?=\n\nbody\n",
)
add(
    "rfc2231-filename.eml",
    H
    + "Subject: file\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee file\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n",
)

# ---------------------------------------------------------------- transfer encodings
simple(
    "qp-soft-breaks.eml",
    "qp",
    "This is a long line that was wrapped by quoted=\n-printable soft line breaks and has =C3=A9 accents.",
    "Content-Transfer-Encoding: quoted-printable\n",
)
simple(
    "qp-broken.eml",
    "qp broken",
    "Broken =ZZ escapes =\n and = trailing =",
    "Content-Transfer-Encoding: quoted-printable\n",
)
simple(
    "base64-broken.eml",
    "b64",
    "SGVsbG8gd29y!!!bGQ===garbage",
    "Content-Transfer-Encoding: base64\n",
)
simple(
    "unknown-cte.eml",
    "cte",
    "body with x-uuencode-ish encoding",
    "Content-Transfer-Encoding: x-made-up\n",
)
simple("binary-cte.eml", "bin", "binary but text", "Content-Transfer-Encoding: binary\n")

# ---------------------------------------------------------------- MIME structures
add(
    "html-only.eml",
    H
    + 'Subject: html\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<html><head><style>p{color:red}</style><script>alert(1)</script></head><body><p>Hello <b>team</b>,</p><p>my order <a href="javascript:alert(1)">1234</a> is late.</p><img src="https://tracker.example/p.gif"><ul><li>one</li><li>two</li></ul></body></html>\n',
)
add(
    "html-only-gmail-quote.eml",
    H
    + 'Subject: Re: order\nContent-Type: text/html; charset=utf-8\n\n<div>Still nothing.</div><div class="gmail_quote"><div>On Mon, Nov 23, 2026 Shop wrote:</div><blockquote>We shipped it.</blockquote></div>\n',
)
add(
    "html-onerror.eml",
    H
    + "Subject: xss\nContent-Type: text/html\n\n<svg onload=alert(1)><img src=x onerror=alert(1)><iframe src=//evil></iframe>text after\n",
)
add(
    "alternative.eml",
    H
    + "Subject: alt\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/plain; charset=utf-8\n\nplain version\n--a\nContent-Type: text/html; charset=utf-8\n\n<p>html version</p>\n--a--\n",
)
add(
    "alternative-related-inline-image.eml",
    H
    + 'Subject: related\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/plain\n\ntext\n--a\nContent-Type: multipart/related; boundary=r\n\n--r\nContent-Type: text/html\n\n<p>see <img src="cid:logo"></p>\n--r\nContent-Type: image/png\nContent-ID: <logo>\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--r--\n--a--\n',
)
add(
    "mixed-nested-deep.eml",
    H
    + "Subject: deep\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=m1\n\n--m1\nContent-Type: multipart/mixed; boundary=m2\n\n--m2\nContent-Type: multipart/alternative; boundary=m3\n\n--m3\nContent-Type: text/plain\n\ndeep text\n--m3\nContent-Type: text/html\n\n<b>deep</b>\n--m3--\n--m2\nContent-Type: text/csv; name=data.csv\nContent-Disposition: attachment; filename=data.csv\n\na,b\n1,2\n--m2--\n--m1\nContent-Type: application/zip; name=x.zip\nContent-Transfer-Encoding: base64\n\nUEsDBA==\n--m1--\n",
)
add(
    "multipart-no-boundary.eml",
    H
    + "Subject: nob\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n\nthere is no boundary here\n",
)
add(
    "multipart-missing-end.eml",
    H
    + "Subject: noend\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\ntruncated mail, no closing boundary\n",
)
add(
    "multipart-empty.eml",
    H
    + "Subject: empty parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=e\n\n--e\n--e--\n",
)
add(
    "preamble-epilogue.eml",
    H
    + "Subject: pre\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=p\n\nThis is a preamble.\n--p\nContent-Type: text/plain\n\nreal text\n--p--\nEpilogue junk\n",
)
add(
    "forwarded-rfc822.eml",
    H
    + "Subject: Fwd: complaint\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=f\n\n--f\nContent-Type: text/plain\n\nSee below.\n--f\nContent-Type: message/rfc822\n\nFrom: someone@else.example\nSubject: original\n\noriginal body\n--f--\n",
)
add(
    "winmail-dat.eml",
    H
    + 'Subject: outlook rich text\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=w\n\n--w\nContent-Type: text/plain\n\nPlease see the attached.\n--w\nContent-Type: application/ms-tnef; name="winmail.dat"\nContent-Disposition: attachment; filename="winmail.dat"\nContent-Transfer-Encoding: base64\n\neJ8+IhAAAQaQCAAEAAAAAAABAAEAAQeQBgAIAAAA5AQAAAAAAADoAAEIgAcAGAAAAElQTS5NaWNy\n--w--\n',
)
add(
    "attachment-only.eml",
    H
    + "Subject: scan\nMIME-Version: 1.0\nContent-Type: application/pdf; name=scan.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n",
)
add(
    "attachment-no-name.eml",
    H
    + "Subject: blob\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=n\n\n--n\nContent-Type: text/plain\n\nsee blob\n--n\nContent-Type: application/octet-stream\n\nxxxx\n--n--\n",
)
add(
    "attachment-evil-name.eml",
    H
    + 'Subject: evil\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=n\n\n--n\nContent-Type: text/plain\n\nsee\n--n\nContent-Type: text/html\nContent-Disposition: attachment; filename="../../etc/passwd\x00.html"\n\n<script>alert(1)</script>\n--n--\n',
)
add(
    "calendar-invite.eml",
    H
    + "Subject: Invitation\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=c\n\n--c\nContent-Type: text/plain\n\nMeeting\n--c\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\nEND:VCALENDAR\n--c--\n",
)
add(
    "signed-smime.eml",
    H
    + 'Subject: signed\nMIME-Version: 1.0\nContent-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=s\n\n--s\nContent-Type: text/plain\n\nsigned text\n--s\nContent-Type: application/pkcs7-signature; name=smime.p7s\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHAqCAMIACAQE=\n--s--\n',
)
add(
    "pgp-encrypted.eml",
    H
    + 'Subject: secret\nMIME-Version: 1.0\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=g\n\n--g\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n--g\nContent-Type: application/octet-stream\n\n-----BEGIN PGP MESSAGE-----\nhQEMA\n-----END PGP MESSAGE-----\n--g--\n',
)

# ---------------------------------------------------------------- headers
add("missing-message-id.eml", H + "Subject: no id\n\nno message id here\n")
add("missing-subject.eml", H + "\nno subject at all\n")
add("missing-date-and-to.eml", "From: carla@example.org\nSubject: minimal\n\nminimal\n")
add("empty-body.eml", H + "Subject: empty\n\n")
add("huge-subject.eml", H + "Subject: " + "very long subject " * 3000 + "\n\nbody\n")
add(
    "huge-references.eml",
    H
    + "Subject: refs\nReferences: "
    + " ".join(f"<r{i}@x.example>" for i in range(5000))
    + "\n\nbody\n",
)
add(
    "many-headers.eml",
    H + "".join(f"X-Junk-{i}: value {i}\n" for i in range(3000)) + "Subject: many\n\nbody\n",
)
add(
    "folded-long-header.eml",
    H
    + "Subject: folded\n"
    + "X-Long: "
    + "\n ".join("word" * 20 for _ in range(400))
    + "\n\nbody\n",
)
add(
    "from-bare-address.eml",
    "From: carla@example.org\nTo: support@shop.example\nSubject: bare\n\nbare from\n",
)
add(
    "from-garbage-reply-to.eml",
    'From: "Weird <name>" <weird@example.org>\nReply-To: not an address at all\nTo: support@shop.example\nSubject: weird\n\nweird\n',
)
add(
    "from-group-syntax.eml",
    "From: undisclosed-recipients:;\nSender: real@example.org\nTo: support@shop.example\nSubject: group\n\nfrom a group\n",
)
add(
    "duplicate-headers.eml",
    H + "Subject: one\nSubject: two\nMessage-ID: <d1@x>\nMessage-ID: <d2@x>\n\ndup\n",
)
add(
    "header-no-space.eml",
    "From:carla@example.org\nTo:support@shop.example\nSubject:nospace\n\nbody\n",
)
add("lf-only-and-nul.eml", b"From: carla@example.org\nSubject: nul\n\nbody with \x00 nul byte\n")
add(
    "reply-quoted-outlook.eml",
    H
    + "Subject: RE: order [#T00000000]\nIn-Reply-To: <unknown@shop.example>\n\nStill waiting.\n\n-----Original Message-----\nFrom: Shop\nSent: Monday\nSubject: order\n\nWe shipped it.\n",
)
add(
    "reply-quoted-gt.eml",
    H
    + "Subject: Re: order\n\nThanks!\n\nOn Mon, 23 Nov 2026 at 10:00, Shop <support@shop.example> wrote:\n> We shipped it.\n> Regards\n",
)

# ---------------------------------------------------------------- automatic: never answered
add(
    "ignored-bounce-dsn.eml",
    "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\nTo: support@shop.example\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=d\n\n--d\nContent-Type: text/plain\n\nThis is the mail system.\n--d\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; nobody@example.org\nAction: failed\nStatus: 5.1.1\n--d\nContent-Type: message/rfc822\n\nFrom: support@shop.example\nSubject: Re: order\n\nour reply\n--d--\n",
)
add(
    "ignored-bounce-mailer-daemon.eml",
    "From: MAILER-DAEMON@mx.example.org\nTo: support@shop.example\nSubject: failure notice\n\nSorry, we were unable to deliver your message.\n",
)
add(
    "ignored-null-return-path.eml",
    "Return-Path: <>\nFrom: postmaster@example.org\nTo: support@shop.example\nSubject: Delivery Status Notification (Failure)\n\nfailed\n",
)
add(
    "ignored-auto-submitted.eml",
    H
    + "Subject: Automatic reply: order\nAuto-Submitted: auto-replied\n\nI am out of the office until Monday.\n",
)
add(
    "ignored-auto-generated.eml",
    H + "Subject: Your ticket\nAuto-Submitted: auto-generated\n\nThis is an automated message.\n",
)
add(
    "ignored-precedence-bulk.eml",
    H + "Subject: Newsletter\nPrecedence: bulk\n\nOur November offers.\n",
)
add("ignored-precedence-junk.eml", H + "Subject: junk\nPrecedence: junk\n\njunk\n")
add("ignored-precedence-list.eml", H + "Subject: [list] topic\nPrecedence: list\n\nlist post\n")
add(
    "ignored-x-autoreply.eml", H + "Subject: Re: order\nX-Autoreply: yes\n\nThanks for your mail.\n"
)
add("ignored-x-autorespond.eml", H + "Subject: Re: order\nX-Autorespond: Out of office\n\nAway.\n")
add(
    "ignored-list-id.eml",
    H + "Subject: [users] question\nList-Id: Users <users.lists.example.org>\n\nlist mail\n",
)
add(
    "ignored-read-receipt.eml",
    H
    + "Subject: Read: order\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification; boundary=r\n\n--r\nContent-Type: text/plain\n\nYour message was read.\n--r\nContent-Type: message/disposition-notification\n\nDisposition: manual-action/MDN-sent-manually; displayed\n--r--\n",
)
add(
    "ignored-no-sender.eml",
    "To: support@shop.example\nSubject: who am I\n\nno From, no Sender, no Reply-To\n",
)
add(
    "ignored-from-unparseable.eml",
    "From: ))) (((\nTo: support@shop.example\nSubject: broken from\n\nbody\n",
)


if __name__ == "__main__":
    for old in HERE.glob("*.eml"):
        old.unlink()
    for name, data in CORPUS.items():
        (HERE / name).write_bytes(data)
    print(f"{len(CORPUS)} messages written to {HERE}")
