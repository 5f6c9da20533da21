"""Translation between the OpenAI chat and Anthropic Messages dialects (and Bedrock's Converse): pure functions,
no I/O.

    sse.py                  an incremental SSE parser (chunks may split events anywhere)
    chat_to_messages.py     OpenAI chat request → Anthropic request; Anthropic message → chat.completion
    messages_to_chat.py     Anthropic request → OpenAI chat request; chat.completion → Anthropic message
    messages_stream.py      Anthropic SSE events → OpenAI chat.completion.chunk SSE (… data: [DONE])
    chat_stream.py          OpenAI chunk SSE → Anthropic SSE events (message_start … message_stop)
    errors.py               error bodies and statuses from one dialect into the other
    converse.py             OpenAI chat request → Bedrock Converse request; Converse response → chat.completion;
                            Bedrock errors → OpenAI's shape
    converse_stream.py      ConverseStream's binary event stream → OpenAI chat.completion.chunk SSE

Imported only on the translating path: a request that needs no translation never loads these modules.
"""
