# Builds the static weir binary in a small image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /weir ./cmd/weir

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /weir /usr/local/bin/weir
ENTRYPOINT ["/usr/local/bin/weir"]
