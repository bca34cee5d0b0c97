"""Web chat for omniroute: the widget, its public WebSocket, and the channel adapter.

Everything here uses omniroute's public hooks only, as any third-party channel would.
"""
