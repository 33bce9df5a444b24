# imagehub in a container: builds as an unprivileged user (rootless buildah;
# RUN steps under runc in their own namespaces, behind slirp4netns), with its
# storage under that user's home. The container needs user namespaces and
# /dev/net/tun, e.g. `docker run --security-opt seccomp=unconfined
# --security-opt apparmor=unconfined --device /dev/net/tun` on hosts that
# restrict them. The user's uid is 1000, the one the Kubernetes runner's build
# pods run as (buildah/kube/objects.go), and /etc/subuid names it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -tags containers_image_openpgp,exclude_graphdriver_btrfs -o /out/imagehub ./cmd/imagehub

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates uidmap runc slirp4netns iptables busybox-static debootstrap \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 1000 --user-group --create-home --home-dir /var/lib/imagehub --shell /usr/sbin/nologin imagehub \
 && echo "imagehub:100000:65536" >> /etc/subuid \
 && echo "imagehub:100000:65536" >> /etc/subgid
COPY --from=build /out/imagehub /usr/local/bin/imagehub
USER imagehub
WORKDIR /var/lib/imagehub
ENV IMAGEHUB_DATA=/var/lib/imagehub/data IMAGEHUB_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/imagehub"]
CMD ["serve"]
