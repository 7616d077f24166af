# syntax=docker/dockerfile:1.7
# The scanner agent for a Raspberry Pi (arm64), on Raspberry Pi OS's base (Debian bookworm) so
# picamera2 and gpiozero come from Raspberry Pi's apt like on a flashed scanner. Build on any
# machine with buildx and QEMU:
#   docker buildx build --platform linux/arm64 -f infra/docker/agent.Dockerfile -t receipts-agent .
# Run with the camera and GPIO passed in (--device /dev/video0 --device /dev/gpiomem) and
# /etc/receipts mounted (agent.yaml, CA, broker password file). The firmware/ image recipe is the
# way production scanners are built; this image is for trials and CI of the agent on arm64.

FROM --platform=linux/arm64 debian:bookworm-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY models ./models
COPY edge_agent ./edge_agent
COPY firmware ./firmware
COPY server ./server
COPY provisioning ./provisioning
COPY infra ./infra
# --system-site-packages: picamera2 and gpiozero are Raspberry Pi OS packages, not wheels.
RUN python3 -m venv --system-site-packages /opt/receipts \
 && /opt/receipts/bin/pip install ".[edge]"

FROM --platform=linux/arm64 debian:bookworm-slim AS runtime
# Raspberry Pi OS's archive (the "raspi" suite) for picamera2 and its libcamera.
ADD https://archive.raspberrypi.com/debian/raspberrypi.gpg.key /usr/share/keyrings/raspberrypi.asc
RUN echo "deb [signed-by=/usr/share/keyrings/raspberrypi.asc] http://archive.raspberrypi.com/debian/ bookworm main" \
      > /etc/apt/sources.list.d/raspi.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-picamera2 python3-gpiozero \
      python3-lgpio tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 receipts \
 && useradd --system --uid 10001 --gid receipts --groups video,dialout \
      --home-dir /var/lib/receipts --create-home receipts
COPY --from=build /opt/receipts /opt/receipts
ENV PATH=/opt/receipts/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /var/lib/receipts
USER receipts:receipts
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["receipts", "agent", "--config", "/etc/receipts/agent.yaml", "--check"]
ENTRYPOINT ["/usr/bin/tini", "--", "receipts"]
CMD ["agent", "--config", "/etc/receipts/agent.yaml"]
