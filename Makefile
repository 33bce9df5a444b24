# imagehub — the two commands a newcomer needs are `make run` and `make test`.
# Both install what they need first (Debian packages via .ci/install.sh).

# buildah and containers/image: no gpgme, no btrfs headers needed; cgo stays on.
export GOFLAGS := -tags=containers_image_openpgp,exclude_graphdriver_btrfs
export CGO_ENABLED := 1
TEMPL := go run github.com/a-h/templ/cmd/templ@v0.3.1100
DATA ?= ./data
ADDR ?= 127.0.0.1:8080

.PHONY: run test install build generate check-generated vet bench base-images lint

## run: install what is needed, build, and serve on $(ADDR) with data in $(DATA)
run: install build
	./imagehub serve --addr $(ADDR) --data $(DATA)

## test: install what is needed, check generated code and formatting, vet, run every test
test: install check-generated vet
	go test -count=1 -timeout 80m ./...

install:
	./.ci/install.sh

build:
	go build -o imagehub ./cmd/imagehub

generate:
	$(TEMPL) generate

## check-generated: the committed templ output must match the .templ sources
check-generated:
	$(TEMPL) generate
	@git diff --exit-code -- views || (echo "views: generated templ code is stale; run make generate and commit" && exit 1)
	@test -z "$$(gofmt -l cmd handlers store buildah views static)" || (gofmt -l cmd handlers store buildah views static; echo "gofmt needed" && exit 1)

vet:
	go vet ./...

## bench: benchmarks (build vs buildah CLI, rebuild, SSE fan-out); figures are ratios to a baseline of the same run
bench: install
	go test -count=1 -run '^$$' -bench Build -benchtime 5x -timeout 60m ./buildah
	go test -count=1 -run '^$$' -bench 'SSE|LogHub' -benchtime 500x ./handlers ./buildah

## base-images: build offline busybox and debian-minbase images and push them to the registry of a running imagehub
base-images: build
	./imagehub base-images --data $(DATA)
