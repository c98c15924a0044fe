"""A creditgate client in Python, with stubs generated from proto/ at start.

    pip install -r examples/python/requirements.txt
    python examples/python/client.py --address 127.0.0.1:50051 --key-file <data dir>/demo-api-key

Checks health, lists the services by reflection, shows that a call without a key is refused,
then makes the same call with the key.
"""

import argparse
import pathlib

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import stubs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--key-file", required=True, help="file holding an API key")
    args = parser.parse_args()
    key = pathlib.Path(args.key_file).read_text().strip()

    stubs.generate()
    from creditgate.v1 import credit_pb2, credit_pb2_grpc  # noqa: E402 (generated above)

    channel = grpc.insecure_channel(args.address)
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    print("health:", health_pb2.HealthCheckResponse.ServingStatus.Name(health.status))

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answer = next(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    print("services:", ", ".join(service.name for service in answer.list_services_response.service))

    credit = credit_pb2_grpc.CreditServiceStub(channel)
    request = credit_pb2.QuoteRequest(model="openai/o3-pro")
    for label, metadata in (("without a key", ()), ("with the key", (("authorization", f"Bearer {key}"),))):
        try:
            response = credit.Quote(request, metadata=metadata)
            print(f"Quote {label}: OK total={response.total}")
        except grpc.RpcError as error:
            print(f"Quote {label}: {error.code().name}: {error.details()}")


if __name__ == "__main__":
    main()
