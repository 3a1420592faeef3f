# flow's container image, for the ecs and kubernetes load runners (and anyone who runs flow in a
# container). Its entrypoint is `flow`: a runner gives it `load-worker s3://…/worker-K.job.json`.
#   docker build -t flow:0.1 .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin flow

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/flow /usr/local/bin/flow
USER 65534:65534
ENTRYPOINT ["flow"]
