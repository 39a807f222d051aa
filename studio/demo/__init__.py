"""Realistic demo data for Studio: many scopes with skewed activity, sessions with tool calls, usage rows.

Used by `manage.py generate_demo_data` (and the Studio benchmark). Everything is drawn from seeded
`random.Random`s, so a given seed and size give the same data.

Shape of the data:
- `scopes` scope ids of several styles (short household ids, opaque org ids, long tenant paths, e-mail
  like ids) plus the global scope; activity is Zipf-like (a few scopes have most sessions, many have one).
  About 70% of them have a label ("Birchwood Dental") and metadata (plan, region), as a SaaS would set
  (SPEC §10), drawn from a second generator seeded from the seed, so the rest of the data does not change.
- `sessions` sessions over the last `days` days (more recent days busier, weekdays busier than weekends,
  office hours busier than nights), on several deploys (Deployment rows, newer deploys for newer sessions)
  and models: claude-sonnet-4-5 (dated snapshot id), claude-haiku-4-5, claude-opus-4-5, claude-sonnet-4,
  and the offline `local` model, which has no price (its usage is "unpriced").
- `usage_rows` model calls in total (one assistant message and one UsageRecord each), spread unevenly over
  the sessions. A turn is a user message and 1-4 model calls; every call but the last of a turn makes tool
  calls (`request`, `query_store`, `store_preferences`, `memory`) with results, some with errors.
- Some sessions end interrupted (the last call cut off, its pending tool calls cancelled) or with an error
  (`overloaded_error`, `rate_limit_error`, `max_turns`, `budget_exceeded`).
- Token counts grow with the conversation; Anthropic sessions mostly use prompt caching (cache writes on
  the first call, cache reads after). Costs come from agents.pricing (admin overrides included).
- Memory entries and store documents (with previous versions) for the more active scopes, when those
  models exist.

Writing is fast at large sizes: rows are produced in batches of sessions and written with COPY on
PostgreSQL and with executemany INSERTs elsewhere (see `loading`).

Modules: `generator` (the run), `sessions` (one session's rows), `conversation` (what is said, tokens and
timing), `tool_calls`, `content` (scope ids and text), `sampling` (weighted draws), `memory_and_stores`,
`loading` (writing rows fast), `clearing` (`--clear`).
"""

from studio.demo.clearing import clear_runtime_data, existing_sessions
from studio.demo.generator import DemoGenerator, DemoOptions, DemoSummary

__all__ = ["DemoGenerator", "DemoOptions", "DemoSummary", "clear_runtime_data", "existing_sessions"]
