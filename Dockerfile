# syntax=docker/dockerfile:1
# The creditgate server image: built in a Rust image, run from a distroless one (glibc and
# libgcc only, no shell, no package manager) as a non-root user. The Helm chart runs this image.
#
#   docker build -t creditgate .
#   docker run --rm creditgate --help
#   docker run --rm -p 50051:50051 -e DATABASE_URL=postgres://… creditgate
#
# The image holds no Postgres: `serve` needs DATABASE_URL (the private database is for laptops).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Protos compile with protox inside build.rs: no protoc needed. Migrations and the default
# catalog are embedded in the binary, so the final stage copies nothing else.
COPY Cargo.toml Cargo.lock build.rs buf.yaml ./
COPY proto proto
COPY migrations migrations
COPY catalog catalog
COPY src src
COPY .cargo .cargo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin creditgate \
    && install -D -m 0755 target/release/creditgate /out/creditgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/creditgate /usr/local/bin/creditgate
# The default of 127.0.0.1 would be unreachable from outside the container.
ENV CREDITGATE_LISTEN=0.0.0.0:50051
EXPOSE 50051
# nonroot is uid/gid 65532, the user the chart's securityContext names.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/creditgate"]
CMD ["serve"]
