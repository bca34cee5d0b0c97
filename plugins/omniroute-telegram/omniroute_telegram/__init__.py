"""Telegram for omniroute: a bot whose chats join the skill-based queue.

Everything here uses omniroute's public hooks only, as any third-party channel would.
"""
