"""Translation between the OpenAI chat, Anthropic Messages, Gemini and Bedrock Converse dialects: pure
functions, no I/O.

    sse.py                  an incremental SSE parser (chunks may split events anywhere)
    chat_to_messages.py     OpenAI chat request → Anthropic request; Anthropic message → chat.completion
    messages_to_chat.py     Anthropic request → OpenAI chat request; chat.completion → Anthropic message
    messages_stream.py      Anthropic SSE events → OpenAI chat.completion.chunk SSE (… data: [DONE])
    chat_stream.py          OpenAI chunk SSE → Anthropic SSE events (message_start … message_stop)
    errors.py               error bodies and statuses from one dialect into the other
    gemini_request.py       OpenAI chat / embeddings request → Gemini generateContent / batchEmbedContents
                            (and Vertex AI predict) bodies
    gemini_response.py      Gemini response → chat.completion; embeddings; Google errors → OpenAI's
    gemini_stream.py        Gemini SSE → OpenAI chat.completion.chunk SSE (… data: [DONE])
    converse.py             OpenAI chat request → Bedrock Converse request; Converse response → chat.completion;
                            Bedrock errors → OpenAI's shape
    converse_stream.py      ConverseStream's binary event stream → OpenAI chat.completion.chunk SSE

Imported only on the translating path: a request that needs no translation never loads these modules.
"""
