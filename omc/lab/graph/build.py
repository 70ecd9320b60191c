"""The Lab's LangGraph `StateGraph` over its steps (`omc.lab.graph.nodes`), compiled with the
database's checkpointer (`omc.lab.graph.checkpoint`). The thread id is the session id.

    START -> plan -+-> ask -> plan            (a question: interrupt, then plan again)
                   +-> retrieve -> features -> check -> train -> evaluate -> report
                         -> approval -+-> promote -> END      (approve / reject)
                                      +-> plan                (revise: re-plan, then re-run
                                                               from the first changed step)
    any step that fails -> END (session `failed`, one line)
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from omc.lab.graph import nodes
from omc.lab.graph.nodes import Runtime
from omc.lab.graph.state import LabState

_CHAIN = ("retrieve", "features", "check", "train", "evaluate", "report")


def config(session_id: str) -> dict[str, Any]:
    """The LangGraph config of a session's thread."""
    return {"configurable": {"thread_id": session_id}}


def _after_plan(state: LabState) -> str:
    if state.get("status") == "failed":
        return END
    if state.get("question"):
        return "ask"
    return state.get("rerun_from") or "retrieve"


def _then(following: str) -> Any:
    def route(state: LabState) -> str:
        return END if state.get("status") == "failed" else following

    return route


def _after_approval(state: LabState) -> str:
    return "promote" if state.get("decision") else "plan"


def _bound(rt: Runtime, gate: Any) -> Any:
    def node(state: LabState) -> dict[str, Any]:
        update: dict[str, Any] = gate(rt, state)
        return update

    node.__name__ = gate.__name__
    return node


def build_graph(rt: Runtime) -> StateGraph[Any]:
    """The uncompiled graph, its steps bound to `rt`."""
    graph: StateGraph[Any] = StateGraph(LabState)
    graph.add_node("plan", nodes.step(rt, "plan", nodes.plan))
    graph.add_node("ask", _bound(rt, nodes.ask))
    for name in _CHAIN:
        graph.add_node(name, nodes.step(rt, name, getattr(nodes, name)))
    graph.add_node("approval", _bound(rt, nodes.approval))
    graph.add_node("promote", nodes.step(rt, "promote", nodes.promote))

    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", _after_plan, ["ask", *_CHAIN, END])
    graph.add_edge("ask", "plan")
    for name, following in zip(_CHAIN, (*_CHAIN[1:], "approval"), strict=True):
        graph.add_conditional_edges(name, _then(following), [following, END])
    graph.add_conditional_edges("approval", _after_approval, ["promote", "plan"])
    graph.add_edge("promote", END)
    return graph


def compiled(rt: Runtime, checkpointer: Any) -> Any:
    return build_graph(rt).compile(checkpointer=checkpointer)
