"""Who may call ("tokens" alone would be ambiguous next to LLM tokens).

    authenticate.py   credential from the request headers → Principal, or Unauthorized
"""
