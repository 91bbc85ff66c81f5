# syntax=docker/dockerfile:1
# mpauth: a static binary on distroless (CA certificates and tzdata, no shell),
# running as an unprivileged user.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t mpauth .
#   docker run -p 8000:8000 -p 9000:9000 -v $PWD/prod.yaml:/etc/mpauth/config.yaml:ro \
#     -e MPAUTH_MYSQL_DSN=... mpauth
#   docker run --rm mpauth migrate -conf /etc/mpauth/config.yaml   # the schema, once per release

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=${VERSION}" -o /out/mpauth ./cmd/mpauth \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mpauth /mpauth
# The production-shaped example; mount your own config over it.
COPY configs/mysql.example.yaml /etc/mpauth/config.yaml
# data_dir: writable by the service user (SQLite and development keys only;
# with MySQL nothing is written here).
COPY --from=build --chown=65532:65532 /out/data /var/lib/mpauth
USER 65532:65532
# 8000: HTTP API, JWKS, /metrics, /healthz, /readyz. 9000: gRPC.
EXPOSE 8000 9000
ENTRYPOINT ["/mpauth"]
CMD ["-conf", "/etc/mpauth/config.yaml"]
