"""The Lab's LLM agents: the user's own model (`providers`) plans a study by tool calling over
the Lab's data tools (`planner`), code validates and repairs every proposal (`proposal`), the
model sees the training window only (`window`), spends within a budget (`budget`) and explains
results from training-window summaries (`narrative`). Nothing here imports LangChain until a
provider is used."""
