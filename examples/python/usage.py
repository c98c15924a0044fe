"""Usage history against a running creditgate: runs of several task types and models, listed
with each filter, summarized, and exported as CSV that Python's csv module reads back.

    pip install -r examples/python/requirements.txt
    python examples/python/usage.py --address 127.0.0.1:50051 --key-file <data dir>/demo-api-key

A new account gets 1,000 credits and 24 runs: chat, image and video task types over four
models and two projects, labels with commas and quotes. Most runs settle; one is
released, two stay active, one settled run is refunded in part. (Labels cannot hold control
characters such as line breaks: Authorize refuses them.) Then:
- ListUsage with no filter, pages of 5 (next_page_token), and with each filter: task type,
  model, status, project, a time range; every answer is checked against what the script did;
- a page token reused with another filter is refused (INVALID_ARGUMENT);
- GetUsageSummary: total runs, credits spent (charged less refunded), most used task type, last
  activity, breakdown by task type and model, checked against the runs;
- ListLedger: the journal, oldest first; each transaction's entries sum to zero;
- ExportUsage: the CSV chunks joined and parsed with csv.DictReader give exactly the runs that
  ListUsage lists (oldest first), labels included.
The script exits with an error on any mismatch.
"""

import argparse
import collections
import csv
import decimal
import io
import json
import pathlib
import sys
import uuid

import grpc

import stubs

D = decimal.Decimal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--key-file", required=True, help="file holding an API key with the billing, worker and reader scopes")
    args = parser.parse_args()
    key = pathlib.Path(args.key_file).read_text().strip()
    stubs.generate()
    from creditgate.v1 import account_pb2, account_pb2_grpc, credit_pb2, credit_pb2_grpc, types_pb2  # noqa: E402

    channel = grpc.insecure_channel(args.address)
    metadata = (("authorization", f"Bearer {key}"),)
    accounts = account_pb2_grpc.AccountServiceStub(channel)
    credit = credit_pb2_grpc.CreditServiceStub(channel)
    t = types_pb2

    def idem() -> str:
        return str(uuid.uuid4())

    account_id = accounts.CreateAccount(account_pb2.CreateAccountRequest(
        idempotency_key=idem(), external_id=f"usage-{uuid.uuid4()}", kind=t.ACCOUNT_KIND_ORGANIZATION),
        metadata=metadata).account.account_id
    accounts.Grant(account_pb2.GrantRequest(idempotency_key=idem(), account_id=account_id,
                                            source=t.GRANT_SOURCE_PURCHASE, amount="1000"), metadata=metadata)
    print(f"account {account_id}: 1000 credits")

    tasks = [t.TASK_TYPE_CHAT, t.TASK_TYPE_CHAT, t.TASK_TYPE_IMAGE, t.TASK_TYPE_VIDEO]
    models = ["meta/llama-3.1-70b", "xai/grok-3-fast", "black-forest-labs/flux-1.1-pro", "kling/kling-2.1"]
    projects = ["website", "mobile app"]
    expected = {}  # hold id → what the script did
    settlements = {}
    for index in range(24):
        task, model, project = tasks[index % 4], models[index % 4], projects[index % 2]
        labels = {"team": "growth, EMEA", "note": f'run "{index}", retried'} if index % 3 == 0 else {"team": "core"}
        hold = credit.Authorize(credit_pb2.AuthorizeRequest(
            idempotency_key=idem(), account_id=account_id, amount="10",
            run=t.RunMetadata(task_type=task, model=model, project=project, run_id=f"run-{index}", labels=labels)),
            metadata=metadata).hold
        record = {"task_type": task, "model": model, "project": project, "labels": labels,
                  "status": t.HOLD_STATUS_ACTIVE, "credits": D(0), "refunded": D(0), "held": D(10)}
        if index == 5:
            credit.Release(credit_pb2.ReleaseRequest(idempotency_key=idem(), hold_id=hold.hold_id), metadata=metadata)
            record.update(status=t.HOLD_STATUS_RELEASED, held=D(0))
        elif index not in (22, 23):
            charged = D(1 + index % 7)
            settlement = credit.Settle(credit_pb2.SettleRequest(
                idempotency_key=idem(), hold_id=hold.hold_id, amount=str(charged)), metadata=metadata).settlement
            settlements[hold.hold_id] = settlement.settlement_id
            record.update(status=t.HOLD_STATUS_SETTLED, credits=charged, held=D(0))
        expected[hold.hold_id] = record
    refunded_hold = next(iter(settlements))
    credit.Refund(credit_pb2.RefundRequest(idempotency_key=idem(), settlement_id=settlements[refunded_hold],
                                           amount="0.5", reason="partial failure"), metadata=metadata)
    expected[refunded_hold]["refunded"] = D("0.5")
    print(f"24 runs: {sum(r['status'] == t.HOLD_STATUS_SETTLED for r in expected.values())} settled, "
          f"1 released, 2 active; 0.5 refunded of one")

    def list_usage(**filters):
        runs, token, pages = [], "", 0
        while True:
            page = accounts.ListUsage(account_pb2.ListUsageRequest(
                account_id=account_id, page_size=5, page_token=token, **filters), metadata=metadata)
            runs.extend(page.runs)
            pages += 1
            token = page.next_page_token
            if not token:
                return runs, pages

    def check(name, runs, want_ids):
        got = [run.hold_id for run in runs]
        times = [(run.created_at.ToDatetime(), run.hold_id) for run in runs]
        if times != sorted(times, reverse=True):
            sys.exit(f"{name}: runs are not newest first")
        if sorted(got) != sorted(want_ids) or len(got) != len(set(got)):
            sys.exit(f"{name}: got {len(got)} runs, expected {len(want_ids)}")
        for run in runs:
            want = expected[run.hold_id]
            if (run.status, D(run.credits), D(run.refunded), D(run.held), run.run.model, run.run.project,
                    dict(run.run.labels)) != (want["status"], want["credits"], want["refunded"], want["held"],
                                              want["model"], want["project"], want["labels"]):
                sys.exit(f"{name}: run {run.hold_id} differs from what was done: {run}")

    everything, pages = list_usage()
    check("ListUsage", everything, list(expected))
    print(f"ListUsage: {len(everything)} runs in {pages} pages of 5, newest first")
    for name, filters, keep in [
        ("task type IMAGE", {"task_type": t.TASK_TYPE_IMAGE}, lambda r: r["task_type"] == t.TASK_TYPE_IMAGE),
        ("model kling-2.1", {"model": "kling/kling-2.1"}, lambda r: r["model"] == "kling/kling-2.1"),
        ("status ACTIVE", {"status": t.HOLD_STATUS_ACTIVE}, lambda r: r["status"] == t.HOLD_STATUS_ACTIVE),
        ("project mobile app", {"project": "mobile app"}, lambda r: r["project"] == "mobile app"),
    ]:
        runs, _ = list_usage(**filters)
        check(f"ListUsage {name}", runs, [hold_id for hold_id, r in expected.items() if keep(r)])
        print(f"ListUsage {name:20} {len(runs):>3} runs")
    middle = everything[len(everything) // 2].created_at
    runs, _ = list_usage(end_time=middle)
    check("ListUsage end_time", runs, [run.hold_id for run in everything
                                       if run.created_at.ToDatetime() < middle.ToDatetime()])
    print(f"ListUsage before {middle.ToJsonString()}: {len(runs)} runs")

    first = accounts.ListUsage(account_pb2.ListUsageRequest(account_id=account_id, page_size=5), metadata=metadata)
    try:
        accounts.ListUsage(account_pb2.ListUsageRequest(account_id=account_id, page_size=5, model="kling/kling-2.1",
                                                        page_token=first.next_page_token), metadata=metadata)
        sys.exit("a page token reused with another filter was accepted")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
            sys.exit(f"a reused page token gave {error.code()}")
        print(f"page token with another filter: {error.code().name}: {error.details()}")

    summary = accounts.GetUsageSummary(account_pb2.GetUsageSummaryRequest(account_id=account_id), metadata=metadata)
    spent = sum(r["credits"] - r["refunded"] for r in expected.values())
    per_task = collections.Counter(r["task_type"] for r in expected.values())
    if (summary.total_runs, D(summary.credits_spent), D(summary.credits_refunded)) != (24, spent, D("0.5")):
        sys.exit(f"summary differs: {summary}")
    if summary.most_used_task_type != per_task.most_common(1)[0][0]:
        sys.exit(f"most used task type differs: {summary.most_used_task_type}")
    if summary.last_activity_at != everything[0].created_at:
        sys.exit("last activity differs from the newest run")
    for usage in summary.by_model:
        want = sum(r["credits"] - r["refunded"] for r in expected.values() if r["model"] == usage.model)
        if D(usage.credits) != want:
            sys.exit(f"model {usage.model}: {usage.credits} != {want}")
    print(f"GetUsageSummary: {summary.total_runs} runs, {summary.credits_spent} credits spent "
          f"({summary.credits_refunded} refunded), most used {t.TaskType.Name(summary.most_used_task_type)}, "
          f"last activity {summary.last_activity_at.ToJsonString()}")
    for usage in summary.by_task_type:
        print(f"  {t.TaskType.Name(usage.task_type):16} {usage.runs:>3} runs {usage.credits:>14} credits")
    for usage in summary.by_model:
        print(f"  {usage.model:32} {usage.runs:>3} runs {usage.credits:>14} credits")

    entries, token = [], ""
    while True:
        page = accounts.ListLedger(account_pb2.ListLedgerRequest(account_id=account_id, page_size=100, page_token=token),
                                   metadata=metadata)
        entries.extend(page.entries)
        token = page.next_page_token
        if not token:
            break
    sums = collections.defaultdict(D)
    for entry in entries:
        sums[entry.transaction_id] += D(entry.amount)
    if any(total != 0 for total in sums.values()):
        sys.exit("a journal transaction does not sum to zero")
    kinds = collections.Counter(t.MovementKind.Name(entry.kind) for entry in entries)
    print(f"ListLedger: {len(entries)} entries in {len(sums)} transactions, each summing to zero: {dict(kinds)}")

    chunks = [chunk.csv_chunk for chunk in accounts.ExportUsage(
        account_pb2.ExportUsageRequest(account_id=account_id), metadata=metadata)]
    rows = list(csv.DictReader(io.StringIO("".join(chunks), newline="")))
    oldest_first = list(reversed(everything))
    if [row["hold_id"] for row in rows] != [run.hold_id for run in oldest_first]:
        sys.exit("the CSV rows are not the runs ListUsage lists, oldest first")
    for row, run in zip(rows, oldest_first):
        labels = json.loads(row["labels"]) if row["labels"] else {}
        if (labels, D(row["credits"]), D(row["refunded"]), row["model"], row["run_id"]) != (
                dict(run.run.labels), D(run.credits), D(run.refunded), run.run.model, run.run.run_id):
            sys.exit(f"CSV row {row} differs from {run}")
    print(f"ExportUsage: {len(chunks)} chunk(s), {len(rows)} rows; csv.DictReader reads back the same runs, "
          f"labels with commas and quotes intact")
    print("usage history: every check passed")


if __name__ == "__main__":
    main()
