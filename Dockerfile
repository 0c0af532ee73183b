# Builds the static weir binary (no cgo: the SQLite driver is pure Go) and
# ships it alone in a distroless image: no shell, no package manager, a
# non-root user. Health checks use the binary itself: `weir probe URL`.
#
#   docker build -t weir .
#   docker run --rm weir --help
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/weir ./cmd/weir \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/weir /usr/local/bin/weir
# Mount point of the file systems' data, owned by the image's user so that a
# named volume mounted there is writable.
COPY --from=build --chown=65532:65532 /out/data /data
# 8080: REST API; 7946 TCP and UDP: gossip; 7071: a worker's or agent's dispatcher.
EXPOSE 8080 7946/tcp 7946/udp 7071
ENTRYPOINT ["/usr/local/bin/weir"]
