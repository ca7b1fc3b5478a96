# careline: build with cgo (SQLite) and the pure-Go olm, run on a small Debian image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -tags goolm -trimpath -ldflags "-s -w" -o /out/careline ./cmd/careline

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data --uid 1337 careline && mkdir -p /data && chown careline /data
COPY --from=build /out/careline /usr/bin/careline
USER careline
WORKDIR /data
VOLUME /data
# 29381: appservice (homeserver → careline, keep private); 29380: portal and Twilio webhooks (behind TLS proxy).
EXPOSE 29380 29381
ENTRYPOINT ["/usr/bin/careline"]
CMD ["-c", "/data/config.yaml", "-r", "/data/registration.yaml"]
