"""The Lab's agentic graph: a LangGraph `StateGraph` over the study's steps, checkpointed in
the session's database, paused by `interrupt()` for a question and for the approval gate.

* `build` — the graph (`build_graph`, `compiled`, `config`); `nodes` — its steps;
  `state` — the JSON state and the stash of frames/models it refers to;
* `checkpoint` — the SQLite / PostgreSQL checkpointer; `planning` — the one planner hook;
* `driver` — start, answer, decide, revise, resume (what `omc lab` calls).
"""
