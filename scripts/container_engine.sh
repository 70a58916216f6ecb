#!/usr/bin/env bash
# Makes a Docker engine answer for the container tests, and the tools to build the image here.
#   source scripts/container_engine.sh   # then: engine_up; ...; engine_down (only stops what it started)
# A running engine (a laptop's Docker, or DOCKER_HOST) is reused. On a bare Debian machine, as
# root, it installs Debian's docker.io and mmdebstrap and starts dockerd; anything else is an error
# that says what to install, never a silent skip.

ENGINE_STARTED_PID=""

engine_up() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "error: no Docker engine answers and this is not root on Debian: start Docker" \
            "(or set DOCKER_HOST), or run the quick tier: bash scripts/test.sh quick" >&2
        return 1
    fi
    if ! command -v dockerd >/dev/null || ! command -v mmdebstrap >/dev/null; then
        echo "installing docker.io and mmdebstrap (Debian packages)" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io mmdebstrap >/dev/null
    fi
    mkdir -p /var/log
    dockerd >/var/log/lwgan-dockerd.log 2>&1 &
    ENGINE_STARTED_PID=$!
    for _ in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "error: dockerd did not answer within 30 s; see /var/log/lwgan-dockerd.log" >&2
    return 1
}

engine_down() {
    if [ -n "$ENGINE_STARTED_PID" ]; then
        # The tests remove their own containers; these are what a killed test left.
        docker ps -aq --filter label=lwgan-kfp.run | xargs -r docker rm -f >/dev/null 2>&1 || true
        kill "$ENGINE_STARTED_PID" 2>/dev/null || true
        wait "$ENGINE_STARTED_PID" 2>/dev/null || true
        ENGINE_STARTED_PID=""
    fi
}
