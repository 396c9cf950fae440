# syntax=docker/dockerfile:1
#
# The container image of one of Ledgerline's two AWS services, for ECS Fargate:
#
#   docker build --build-arg SERVICE=command-api -t ledgerline/command-api .
#   docker build --build-arg SERVICE=query-api   -t ledgerline/query-api .
#
# The build stage compiles `cargo build --release --locked -p $SERVICE --features aws
# --bin $SERVICE`; the runtime stage is distroless (glibc, CA certificates, tzdata, no
# shell) and runs the binary as the non-root user 65532. The service is configured by
# environment only (CRM_ADDR defaults to 0.0.0.0:8080; see docs/architecture.md, "The
# AWS path"), logs JSON lines to stdout and writes nothing to disk, so the task runs with
# a read-only root filesystem. Both images are linux/amd64 when built on an x86_64
# runner: the ECS task definitions must use the X86_64 CPU architecture.
#
# Caching: the cargo registry and target directory are BuildKit cache mounts, so a
# second build on the same builder (the deploy workflow builds command-api, then
# query-api) reuses the dependencies the first one compiled.
#
# Base images are pinned by digest. To move to a newer patch of either, resolve the tag
# again (`docker buildx imagetools inspect <image>:<tag>`) and replace the digest.

ARG SERVICE=command-api

# rust:1.95-bookworm (Debian 12, glibc 2.36: the same glibc as the runtime image).
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
ARG SERVICE
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    case "$SERVICE" in \
      command-api|query-api) ;; \
      *) echo "SERVICE must be command-api or query-api, not '$SERVICE'" >&2; exit 1 ;; \
    esac \
    && cargo build --release --locked -p "$SERVICE" --features aws --bin "$SERVICE" \
    && install -D -m 0555 "target/release/$SERVICE" /out/service

# gcr.io/distroless/cc-debian12:nonroot
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
ARG SERVICE
LABEL org.opencontainers.image.title="ledgerline-${SERVICE}" \
      org.opencontainers.image.description="Ledgerline ${SERVICE} (AWS service, ECS Fargate)"
COPY --from=build /out/service /app/service
USER 65532:65532
EXPOSE 8080
# The binary checks its own readiness (`<service> health` asks GET /health/ready of the
# service on this machine): the image has no shell or curl to do it with. ECS runs the
# same command as the task's container health check; the load balancer's target group
# checks /health/ready from outside.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["/app/service", "health"]
ENTRYPOINT ["/app/service"]
