"""One message of a chat, from request to `done`, in parts with one job each:

- `request`: the chat request (validation, model choice) and `prepare_chat`, everything that can fail
  with a JSON error before a stream starts: auth is done by the caller, then the scope, the session and
  its lease, in one trip to the database;
- `lease`: the per-session lease, waited for, renewed while the message runs, released at the end;
- `cancel`: stopping a message from any process through the channel layer;
- `recorder`: the record of the message as it happens (user message, text checkpoints, each model call
  and its usage, each tool call, the transcript);
- `stream`: the events, from the run task to the SSE, sync and WebSocket senders;
- `run`: `ChatRun`, which puts them together: `init` first, then the agent loop, always `done` last.
"""
