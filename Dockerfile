# The app in a container: `docker build -t jobprep-release .` (or scripts/build-image.sh), then
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" jobprep-release --yes
# With the storage flags, name a storage emulator by a connection string whose BlobEndpoint is
# an address the app's container and the node containers both reach (not 127.0.0.1): README,
# "Running in a container". --azurite needs Node.js, which this image does not have.
# Works with the legacy builder and with BuildKit. Debian's python3 (3.11) in every stage.

# ---- runtime: Debian's python3 and CA certificates; the final stage starts from it too.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log

# ---- build tools: a virtual environment with pip (python3-venv stays in this stage).
FROM runtime AS build-tools
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

# ---- builder: the app and its dependencies installed from the repository into /opt/venv.
FROM build-tools AS builder
# WHEELS: a directory inside the build context holding wheels for the app's dependencies (and
# setuptools, to build the app). Empty (the default): everything comes from the package index.
ARG WHEELS=""
COPY . /src
RUN if [ -n "$WHEELS" ]; then \
      /opt/venv/bin/pip install --no-index --find-links "/src/$WHEELS" /src; \
    else \
      /opt/venv/bin/pip install /src; \
    fi \
 && /opt/venv/bin/python -m jobprep_release --help >/dev/null \
 && /opt/venv/bin/pip uninstall -q -y pip setuptools

# ---- final: the runtime, the virtual environment, a non-root user.
FROM runtime
ARG APP_UID=10001
RUN useradd --uid "$APP_UID" --user-group --create-home --home-dir /home/jobprep \
      --shell /usr/sbin/nologin jobprep \
 && install -d -o jobprep -g jobprep -m 0755 \
      /home/jobprep/.local /home/jobprep/.local/state /home/jobprep/.local/state/jobprep_release
# The docker backend keeps its state file in $XDG_STATE_HOME/jobprep_release, writable by the
# user; mount a named volume there (-v jobprep-state:/home/jobprep/.local/state/jobprep_release)
# to keep it between runs.
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_STATE_HOME=/home/jobprep/.local/state
# Numeric, so that orchestrators can check it is not root (runAsNonRoot).
USER ${APP_UID}
WORKDIR /home/jobprep
ENTRYPOINT ["python", "-m", "jobprep_release"]
