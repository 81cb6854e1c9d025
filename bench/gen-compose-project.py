#!/usr/bin/env python3
"""Writes a large compose project for load benchmarks.

Usage: gen-compose-project.py DIR [SERVICES]

The project exercises what makes loading expensive: anchors and merge keys, interpolation with
defaults, `extends` chains within the file, and an override file that touches every service.
"""
import os
import sys


def main() -> None:
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    os.makedirs(out, exist_ok=True)
    lines = [
        "x-common: &common",
        "  restart: unless-stopped",
        "  labels:",
        "    com.example.team: bench",
        "  logging:",
        "    driver: json-file",
        "    options: {max-size: 10m, max-file: '3'}",
        "x-health: &health",
        "  test: [\"CMD-SHELL\", \"true\"]",
        "  interval: 30s",
        "  timeout: 5s",
        "  retries: 3",
        "services:",
        "  base:",
        "    <<: *common",
        "    image: \"${REGISTRY:-docker.io}/library/busybox:${TAG:-latest}\"",
        "    environment:",
        "      - MODE=${MODE:-bench}",
        "      - HOME_DIR=${HOME}",
    ]
    for i in range(n):
        parent = "base" if i % 10 == 0 else f"svc{i - 1}"
        lines += [
            f"  svc{i}:",
            "    <<: *common",
            f"    extends: {parent}",
            "    healthcheck: *health",
            f"    command: [\"sh\", \"-c\", \"echo svc{i} && sleep ${{SLEEP:-3600}}\"]",
            "    environment:",
            f"      INDEX: \"{i}\"",
            f"      PEER: svc{(i + 1) % n}",
            "    ports:",
            f"      - \"127.0.0.1:{20000 + i}:80\"",
            "    volumes:",
            f"      - data{i % 50}:/data",
            f"      - ./conf/svc{i}:/etc/svc:ro",
            "    networks: [front, back]",
        ]
        if i > 0:
            lines += ["    depends_on:", f"      svc{i - 1}:", "        condition: service_started"]
    lines += ["networks:", "  front: {}", "  back:", "    internal: true", "volumes:"]
    lines += [f"  data{j}: {{}}" for j in range(50)]
    with open(os.path.join(out, "compose.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    override = ["services:"]
    for i in range(n):
        override += [f"  svc{i}:", "    environment:", f"      OVERRIDDEN: \"{i}\"", "    cap_add: [NET_ADMIN]"]
    with open(os.path.join(out, "compose.override.yaml"), "w") as f:
        f.write("\n".join(override) + "\n")
    with open(os.path.join(out, ".env"), "w") as f:
        f.write("TAG=1.36\nSLEEP=60\n")


if __name__ == "__main__":
    main()
