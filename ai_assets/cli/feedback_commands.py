"""`ai-assets feedback`: judge an answer that `ask` or `search` showed, by the id they printed; and
the recording that gives those answers their id. Judgements go to the knowledge base's feedback
store (``Settings.feedback_location``), which ``feedback_eval_set`` turns into an eval set."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from ai_assets.cli.common import CliError
from ai_assets.core.feedback import (
    AnsweredQuery,
    FeedbackStoreUnavailable,
    FileFeedbackStore,
    Judgement,
    UnknownAnswer,
)
from ai_assets.settings import Settings

CLIENT = "cli"


def register(commands: argparse._SubParsersAction) -> None:
    feedback = commands.add_parser(
        "feedback", help="judge an answer of `ask` or `search` by its id: good or bad, as a whole or one citation"
    )
    feedback.add_argument("answer_id", nargs="?", metavar="ID", help="the answer id that `ask` or `search` printed")
    feedback.add_argument("verdict", nargs="?", metavar="good|bad")
    feedback.add_argument("--citation", type=int, metavar="N", help="judge the passage cited [N] (a search's hit N)")
    feedback.add_argument("--note", default="", metavar="TEXT", help="why, for whoever reviews it")
    feedback.add_argument("--list", action="store_true", help="list recent answers and their judgements")
    feedback.add_argument("--limit", type=int, default=20, help="answers --list shows (default 20)")
    feedback.set_defaults(handler=feedback_command)


def record_answered(settings: Settings, answered: AnsweredQuery) -> str | None:
    """Record what was shown and return its id; when the store cannot be written, warn (naming it)
    and return None: the answer was printed and that is not lost."""
    try:
        FileFeedbackStore(settings.feedback_location).record_answer(answered)
    except FeedbackStoreUnavailable as error:
        print(f"ai-assets: warning: answer not recorded, it cannot be judged: {error}", file=sys.stderr)
        return None
    return answered.answer_id


def judge_hint(answer_id: str | None) -> str | None:
    if answer_id is None:
        return None
    return f"answer id: {answer_id} (judge it: ai-assets feedback {answer_id} good|bad [--citation N])"


def feedback_command(args: argparse.Namespace, settings: Settings) -> int:
    store = FileFeedbackStore(settings.feedback_location)
    try:
        if args.list:
            if args.answer_id or args.verdict:
                raise CliError("--list takes no answer id or verdict")
            print_recent(store, args.limit)
            return 0
        if not args.answer_id or args.verdict not in ("good", "bad"):
            raise CliError(
                "give an answer id and good or bad, e.g. `ai-assets feedback a_0123456789abcdef good --citation 1`"
            )
        judgement = Judgement(
            answer_id=args.answer_id, verdict=args.verdict, citation=args.citation, note=args.note, client=CLIENT
        )
        answer = store.record_judgement(judgement)
    except (UnknownAnswer, FeedbackStoreUnavailable, ValueError) as error:
        raise CliError(str(error)) from None
    print(f"recorded: {args.verdict} {judged_part(answer, args.citation)} of {answer.answer_id} ({answer.question!r})")
    if args.verdict == "good" and args.citation is None and answer.kind == "search":
        print("note: a search judged good as a whole adds nothing to the eval set: name the hit with --citation N")
    else:
        print("`ai-assets build` adds it to the feedback eval set")
    return 0


def judged_part(answer: AnsweredQuery, citation: int | None) -> str:
    if citation is None:
        return "answer"
    passage = next(passage for passage in answer.passages if passage.number == citation)
    return f"citation [{citation}] ({passage.doc_key})"


def print_recent(store: FileFeedbackStore, limit: int) -> None:
    answers = sorted(store.answers(), key=lambda answer: answer.created_at, reverse=True)[: max(limit, 0)]
    shown = {answer.answer_id for answer in answers}
    verdicts: dict[str, list[str]] = {}
    for judgement in sorted(store.judgements(), key=lambda judgement: judgement.created_at):
        if judgement.answer_id in shown:
            part = f" [{judgement.citation}]" if judgement.citation is not None else ""
            verdicts.setdefault(judgement.answer_id, []).append(f"{judgement.verdict}{part}")
    if not answers:
        print(f"no answers recorded yet in {store.location}")
    for answer in answers:
        judged = ", ".join(verdicts.get(answer.answer_id, [])) or "not judged"
        print(f"{answer.answer_id}  {when(answer.created_at)}  {answer.kind:<6}  {judged:<16}  {answer.question}")


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
