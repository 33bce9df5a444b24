# imagehub — the two commands a newcomer needs are `make run` and `make test`.
# Both install what they need first (Debian packages via .ci/install.sh).
# `make unit` is the quick edit-test loop: no root, no apt, no browser.

# buildah and containers/image: no gpgme, no btrfs headers needed; cgo stays on.
export GOFLAGS := -tags=containers_image_openpgp,exclude_graphdriver_btrfs
export CGO_ENABLED := 1
TEMPL := go run github.com/a-h/templ/cmd/templ@v0.3.1100
STATICCHECK := go run honnef.co/go/tools/cmd/staticcheck@v0.7.0
DATA ?= ./data
ADDR ?= 127.0.0.1:8080
# How long `make bench`'s soak runs, and the test binary's time limit for it
# (the set-up, an idle baseline of 30 s and the last builds come on top).
SOAK ?= 5m
SOAK_TIMEOUT ?= 30m

# The packages with concurrency of their own (the log fan-out, the queue and
# its runners, the web layer with SSE) run under the race detector.
RACE_PKGS := ./buildah/buildlog ./buildah/queue ./buildah/kube ./handlers
# The packages that build images for real (root, buildah, a registry) and the
# end-to-end tests of the binary; `make unit` leaves them out.
BUILD_PKGS := ./buildah/worker ./cmd/imagehub

.PHONY: run test unit install build generate check-generated lint bench base-images testcluster

## run: install what is needed, build, and serve on $(ADDR) with data in $(DATA)
run: install build
	./imagehub serve --addr $(ADDR) --data $(DATA)

## test: install what is needed, check generated code and formatting, lint, run every test
test: install testcluster check-generated lint
	go test -count=1 -race -timeout 45m $(RACE_PKGS)
	go test -count=1 -timeout 80m $$(go list ./... | grep -v -x $(foreach p,$(RACE_PKGS),-e imagehub/$(p:./%=%)))

## unit: the fast tests (no root, no apt, no browser), for the edit-test loop
unit:
	go test -count=1 -short $$(go list ./... | grep -v -x $(foreach p,$(BUILD_PKGS),-e imagehub/$(p:./%=%)))

install:
	./.ci/install.sh

## testcluster: build the Kubernetes control plane the Kubernetes runner's integration tests start
## (a real kube-apiserver, kube-controller-manager and etcd, from the versions pinned in their own
## module, into a cache shared by checkouts; the first build takes ~8 min of two cores, a second
## finds them built). make test does; make run does not need them.
testcluster: install
	./deploy/kubernetes/testcluster/build.sh

build:
	go build -o imagehub ./cmd/imagehub

generate:
	$(TEMPL) generate

## check-generated: the committed templ output must match the .templ sources
check-generated:
	$(TEMPL) generate
	@git diff --exit-code -- views || (echo "views: generated templ code is stale; run make generate and commit" && exit 1)
	@test -z "$$(gofmt -l cmd handlers store buildah views static)" || (gofmt -l cmd handlers store buildah views static; echo "gofmt needed" && exit 1)

## lint: go vet and staticcheck (a pinned version)
lint:
	go vet ./...
	$(STATICCHECK) ./...

## bench: benchmarks (build vs buildah CLI, rebuild in the same store and through the registry cache, a second image through the package cache vs the first, the Kubernetes runner vs the local one, SSE fan-out, the catalogue at 10,000 images) and the soak (SOAK long, 5m by default); figures are ratios to a baseline of the same run
bench: install testcluster
	go test -count=1 -run '^$$' -bench Build -benchtime 5x -timeout 60m ./buildah/worker
	go test -count=1 -run '^$$' -bench KubernetesRunner -benchtime 5x -timeout 30m ./cmd/imagehub
	go test -count=1 -run '^$$' -bench 'SSE|Hub' -benchtime 500x ./handlers ./buildah/buildlog
	go test -count=1 -run '^$$' -bench Scale -benchtime 2000x ./handlers
	go test -count=1 -run '^$$' -bench Soak -benchtime 1x -timeout $(SOAK_TIMEOUT) ./cmd/imagehub -soak-duration $(SOAK)

## base-images: build offline busybox and debian-minbase images and push them to the registry of a running imagehub
base-images: build
	./imagehub base-images --data $(DATA)
