"""Email for omniroute: an SMTP listener and IMAP mailboxes in, a durable outbox out.

Everything here uses omniroute's public hooks only, as any third-party channel would.
"""
