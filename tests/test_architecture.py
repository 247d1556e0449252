"""The paid-job path is one path: adapters order paid jobs through `orders` only.

The import contracts ([tool.importlinter] in pyproject.toml, run by `make test`) keep the
layers; this test reads the adapters' source to prove what imports can't: no cog or route
orders a job's steps itself (admits, reserves, queues, or takes the paid-job rate-limit turn),
and every paid action is one of the known callers of `orders`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = sorted([*ROOT.joinpath("cogs").glob("*.py"), *ROOT.joinpath("web").glob("*.py")])
#: The steps of a paid job that only `orders` (and the job engine under it) may take.
STEPS = {"admit", "reserve", "enqueue", "submit", "reserve_within_budget"}
#: Where each paid action of the bot is ordered: (file, the function that orders it).
PAID_ACTIONS = {
    ("cogs/generate.py", "generate"),  # /generate
    ("cogs/views.py", "run"),  # Reroll, Variations
    ("cogs/views.py", "submit_edit"),  # an Edit's form
    ("cogs/describe.py", "order"),  # /describe and the message command "Describe with Nano Banana"
    ("cogs/edit_any.py", "edit"),  # "Edit with Nano Banana"'s form (issue 22)
    ("web/api.py", "generate_image"),  # POST /api/v1/images/generate
    ("web/making.py", "make_image"),  # the web gallery's generate form
    ("web/making.py", "edit_image"),  # the web gallery's edit form
    # A conversation's turn: through ConversationService, which orders it through `orders`.
    ("cogs/conversations.py", "continue_from_message"),  # a reply that mentions the bot
    ("cogs/conversations.py", "run"),  # a turn's Reroll in a thread
    ("cogs/conversations.py", "submit_thread_edit"),  # a thread's Edit form
    ("web/api.py", "add_turn"),  # POST /api/v1/conversations/{id}/turns
}


def _calls(path: Path) -> list[tuple[str, str, ast.Call]]:
    """(enclosing function, called attribute, call) for each `x.attr(...)` in a module."""
    tree = ast.parse(path.read_text("utf-8"))
    found: list[tuple[str, str, ast.Call]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = child.name
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                found.append((name, child.func.attr, child))
            visit(child, name)

    visit(tree, "<module>")
    return found


def _receiver(call: ast.Call) -> str:
    return ast.unparse(call.func.value) if isinstance(call.func, ast.Attribute) else ""


def test_no_adapter_takes_a_paid_jobs_steps_itself() -> None:
    offences = []
    for path in ADAPTERS:
        for function, attribute, call in _calls(path):
            receiver = _receiver(call)
            if attribute in STEPS and not receiver.endswith("orders"):
                offences.append(f"{path.relative_to(ROOT)}:{call.lineno} {function}: {receiver}")
            turn = [a.value for a in call.args if isinstance(a, ast.Constant)]
            if attribute == "take_turn" and "generate" in turn:
                offences.append(f"{path.relative_to(ROOT)}:{call.lineno} takes a paid turn")
    assert offences == [], "adapters ordering paid jobs themselves:\n" + "\n".join(offences)


def test_every_paid_action_is_ordered_through_orders() -> None:
    callers = set()
    for path in ADAPTERS:
        for function, attribute, call in _calls(path):
            receiver = _receiver(call)
            ordering = receiver.endswith("orders") or receiver.endswith("conversations")
            if attribute in {"prepare", "prepare_caption"} and ordering:
                callers.add((str(path.relative_to(ROOT)), function))
    assert callers == PAID_ACTIONS
