"""Allowances and spend limits against a running creditgate: a plan's free and subscription
credits, and a per-member daily cap on an organization account.

    pip install -r examples/python/requirements.txt
    python examples/python/plans.py --address 127.0.0.1:50051 --key-file <data dir>/demo-api-key

First a user on a plan: SetAllowance gives 5 free credits a day (days in America/New_York) and
100 subscription credits a month (from today, in UTC). Each period's credits are granted at
once, or on the account's first operation in that period, and expire when it ends. A run of 7
then takes the 5 free credits first and 2 of the subscription's (free, then subscription, then
top-ups and purchases).

Then an organization with 1,000 credits and a daily limit of 3 for its member "alice":
SetSpendLimit caps what Authorize calls naming her (spend_scope) may reserve and spend per UTC
day. Her fourth run is refused with FAILED_PRECONDITION / SPEND_LIMIT_REACHED, whose ErrorInfo
gives the figures, while "bob" still spends, and a Quote for her says allowed=false.

A client cannot move a live server's clock, so the script only prints when each period ends
(next_reset_at, period_start). What happens at a day's or a month's end (the next grant, the
old one expiring, the limit's counters starting again) is covered by the test suite, which
moves the server's injectable clock instead of waiting.
"""

import argparse
import decimal
import pathlib
import uuid

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import stubs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--key-file", required=True, help="file holding an API key with the billing and worker scopes")
    args = parser.parse_args()
    key = pathlib.Path(args.key_file).read_text().strip()
    stubs.generate()
    from creditgate.v1 import account_pb2, account_pb2_grpc, credit_pb2, credit_pb2_grpc, types_pb2  # noqa: E402

    channel = grpc.insecure_channel(args.address)
    api = Api(key, account_pb2, account_pb2_grpc.AccountServiceStub(channel),
              credit_pb2, credit_pb2_grpc.CreditServiceStub(channel), types_pb2)
    user_on_a_plan(api)
    member_limits(api)


class Api:
    """The calls the two parts share, each with a fresh idempotency key."""

    def __init__(self, key, account_pb2, accounts, credit_pb2, credit, types_pb2):
        self.metadata = (("authorization", f"Bearer {key}"),)
        self.account_pb2, self.accounts = account_pb2, accounts
        self.credit_pb2, self.credit = credit_pb2, credit
        self.types = types_pb2

    def create_account(self, kind) -> str:
        request = self.account_pb2.CreateAccountRequest(
            idempotency_key=str(uuid.uuid4()), external_id=f"plans-{uuid.uuid4()}", kind=kind)
        return self.accounts.CreateAccount(request, metadata=self.metadata).account.account_id

    def set_allowance(self, account_id, name, source, amount, period, time_zone=""):
        request = self.account_pb2.SetAllowanceRequest(
            idempotency_key=str(uuid.uuid4()), account_id=account_id, name=name, source=source,
            amount=amount, period=period, time_zone=time_zone, enabled=True)
        return self.accounts.SetAllowance(request, metadata=self.metadata).allowance

    def member(self, member_id):
        return self.types.SpendScope(kind=self.types.SPEND_SCOPE_KIND_MEMBER, scope_id=member_id)

    def authorize(self, account_id, amount, member_id=""):
        request = self.credit_pb2.AuthorizeRequest(
            idempotency_key=str(uuid.uuid4()), account_id=account_id, amount=amount,
            run=self.types.RunMetadata(task_type=self.types.TASK_TYPE_CHAT))
        if member_id:
            request.spend_scope.CopyFrom(self.member(member_id))
        return self.credit.Authorize(request, metadata=self.metadata).hold

    def settle(self, hold_id, amount):
        request = self.credit_pb2.SettleRequest(idempotency_key=str(uuid.uuid4()), hold_id=hold_id, amount=amount)
        return self.credit.Settle(request, metadata=self.metadata).settlement

    def buckets(self, account_id) -> dict:
        balance = self.accounts.GetBalance(self.account_pb2.GetBalanceRequest(account_id=account_id), metadata=self.metadata)
        return {self.types.GrantSource.Name(bucket.source): bucket for bucket in balance.buckets}

    def get_account(self, account_id):
        return self.accounts.GetAccount(self.account_pb2.GetAccountRequest(account_id=account_id), metadata=self.metadata)


def when(timestamp) -> str:
    return timestamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")


def user_on_a_plan(api: Api) -> None:
    types = api.types
    print("a user on a plan: 5 free credits a day, 100 subscription credits a month")
    account_id = api.create_account(types.ACCOUNT_KIND_USER)
    api.set_allowance(account_id, "daily-free", types.GRANT_SOURCE_FREE_DAILY, "5",
                      types.ALLOWANCE_PERIOD_DAY, time_zone="America/New_York")
    api.set_allowance(account_id, "pro-monthly", types.GRANT_SOURCE_SUBSCRIPTION, "100",
                      types.ALLOWANCE_PERIOD_MONTH)
    for allowance in api.get_account(account_id).allowances:
        print(f"  allowance {allowance.name:12} {allowance.amount:>4} "
              f"{types.AllowancePeriod.Name(allowance.period):22} in {allowance.time_zone:17} "
              f"next reset {when(allowance.next_reset_at)}")
    before = api.buckets(account_id)
    for source, bucket in before.items():
        print(f"  bucket {source:26} available {bucket.available:>4}")

    print("a run of 7: authorize 7, settle 7")
    hold = api.authorize(account_id, "7")
    print("  reserved in consumption order:", ", ".join(f"{allocation.amount} from grant {allocation.grant_id[-6:]}" for allocation in hold.allocations))
    settlement = api.settle(hold.hold_id, "7")
    print(f"  settled {settlement.total} (from the hold {settlement.from_hold})")
    after = api.buckets(account_id)
    for source, bucket in before.items():
        left = after[source].available if source in after else "0"  # an emptied bucket is not listed
        paid = decimal.Decimal(bucket.available) - decimal.Decimal(left)
        print(f"  bucket {source:26} available {left:>4}  (paid {paid} of the run)")


def member_limits(api: Api) -> None:
    types = api.types
    print("an organization with 1000 credits; alice may spend 3 a UTC day")
    account_id = api.create_account(types.ACCOUNT_KIND_ORGANIZATION)
    api.accounts.Grant(api.account_pb2.GrantRequest(
        idempotency_key=str(uuid.uuid4()), account_id=account_id, source=types.GRANT_SOURCE_PURCHASE, amount="1000"),
        metadata=api.metadata)
    api.accounts.SetSpendLimit(api.account_pb2.SetSpendLimitRequest(
        idempotency_key=str(uuid.uuid4()), account_id=account_id, scope=api.member("alice"),
        period=types.LIMIT_PERIOD_DAY, limit="3"), metadata=api.metadata)

    for run in range(1, 4):
        hold = api.authorize(account_id, "1", member_id="alice")
        if run < 3:
            api.settle(hold.hold_id, "1")
            print(f"  alice run {run}: authorized 1, settled 1")
        else:
            print(f"  alice run {run}: authorized 1, still running")
    limit = api.get_account(account_id).spend_limits[0]
    print(f"  limit {limit.limit} a day from {when(limit.period_start)}: spent {limit.spent}, reserved {limit.reserved}")

    try:
        api.authorize(account_id, "1", member_id="alice")
        print("  alice run 4: authorized (unexpected)")
    except grpc.RpcError as error:
        print(f"  alice run 4: {error.code().name}: {error.details()}")
        info = error_info(error)
        print(f"    ErrorInfo reason {info.reason}, domain {info.domain}")
        for name, value in sorted(info.metadata.items()):
            print(f"      {name} = {value}")

    hold = api.authorize(account_id, "1", member_id="bob")
    print(f"  bob: authorized {hold.amount} (no limit on bob)")

    quote = api.credit.Quote(api.credit_pb2.QuoteRequest(
        model="xai/grok-3-fast", usage=types.Usage(input_tokens=20_000, output_tokens=4_000),
        account_id=account_id, spend_scope=api.member("alice")), metadata=api.metadata)
    print(f"  quote for alice: total {quote.total}, allowed {quote.allowed}, "
          f"affordable {quote.affordable}, denial_reason {quote.denial_reason}")


def error_info(error: grpc.RpcError):
    """The google.rpc.ErrorInfo creditgate attaches to every refusal."""
    status = rpc_status.from_call(error)
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise RuntimeError(f"no ErrorInfo in {error}")


if __name__ == "__main__":
    main()
