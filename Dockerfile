# sluice — multi-stage build on Debian 12. The runtime image holds only sluiced, its shared
# libraries, the migrations and the example config; it runs as the unprivileged user `sluice`.
# tests/integration/ops_test.cpp checks both package lists: the runtime stage installs exactly the
# packages of the libraries sluiced links (plus curl and ca-certificates for the health check), the
# build stage exactly the "# libraries" of scripts/install-deps. Migrations: `sluiced migrate`
# (see docker-compose.yml).
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config libpq-dev libboost-dev libsimdjson-dev \
      nlohmann-json3-dev prometheus-cpp-dev libspdlog-dev libsystemd-dev zlib1g-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF \
    && cmake --build build --target sluiced

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libpq5 libsimdjson14 libprometheus-cpp-core1.0 libspdlog1.10 libfmt9 libsystemd0 zlib1g libssl3 curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/sluice --create-home --shell /usr/sbin/nologin sluice
COPY --from=build /src/build/sluiced /usr/bin/sluiced
COPY sql /usr/share/sluice/sql
COPY config/example.json /etc/sluice/sluice.json
USER sluice
WORKDIR /var/lib/sluice
EXPOSE 8080 8089/udp 9100
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:9100/healthz || exit 1
ENTRYPOINT ["/usr/bin/sluiced"]
CMD ["--config", "/etc/sluice/sluice.json"]
