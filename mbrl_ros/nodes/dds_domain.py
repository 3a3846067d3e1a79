"""Which ROS domains already have DDS participants on this host, read from the UDP ports they bind (Linux).

DDS implementations follow the RTPS port mapping: the participants of domain ``d`` bind UDP ports from
``7400 + 250 d`` up (participant ``p``'s discovery traffic on ``7410 + 250 d + 2 p``), all below ``7400 + 250 (d + 1)``.
Domains 0-101 map below Linux's ephemeral ports (32768 up), so there a bound port in a domain's range is a
participant's. Two graphs in one domain see each other's topics: a simulated run would take another's ``/clock``,
``/joint_states``, models and episode ends, and a test would see another test's.
"""

import os
from pathlib import Path

RTPS_PORT_BASE = 7400
RTPS_DOMAIN_GAIN = 250  # ports per domain
HIGHEST_PORT_SAFE_DOMAIN = 101  # its ports end below Linux's ephemeral range (ROS 2's documented safe domains)
_PROC_UDP_TABLES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))


def bound_udp_ports(tables: tuple[Path, ...] = _PROC_UDP_TABLES) -> set[int] | None:
    """The local ports of every UDP socket in this network namespace, or None where no table could be read (a table
    absent, unreadable or not in the kernel's format counts as not read)."""
    ports: set[int] = set()
    readable = False
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]  # a header, then "sl local_address rem_address ..."
            ports.update(int(line.split()[1].rsplit(":", 1)[1], 16) for line in lines if line.strip())
        except (OSError, IndexError, ValueError):
            continue
        readable = True
    return ports if readable else None


def domain_ports(domain_id: int) -> range:
    """The UDP ports the RTPS port mapping gives ``domain_id``."""
    start = RTPS_PORT_BASE + RTPS_DOMAIN_GAIN * domain_id
    return range(start, start + RTPS_DOMAIN_GAIN)


def domain_in_use(domain_id: int, ports: set[int] | None = None) -> bool | None:
    """Whether a DDS participant on this host has bound a port of ``domain_id`` (0-101); None where it cannot tell.

    Args:
        domain_id: the ROS domain.
        ports: the bound UDP ports (default: read now with :func:`bound_udp_ports`).
    """
    if not 0 <= domain_id <= HIGHEST_PORT_SAFE_DOMAIN:
        return None  # its ports overlap the ephemeral range: any client socket may hold one
    ports = bound_udp_ports() if ports is None else ports
    if ports is None:
        return None
    return any(port in ports for port in domain_ports(domain_id))


def unused_domain_id(preferred: int) -> int:
    """The first domain from ``preferred`` on (cycling through 1-101) in which no participant on this host has bound a
    port; ``preferred`` itself where the ports cannot be read or every domain is taken."""
    ports = bound_udp_ports()
    if ports is None:
        return preferred
    count = HIGHEST_PORT_SAFE_DOMAIN
    for offset in range(count):
        candidate = 1 + (preferred - 1 + offset) % count
        if not domain_in_use(candidate, ports):
            return candidate
    return preferred


def current_domain_id() -> int:
    """The domain this process's ROS contexts join: ``ROS_DOMAIN_ID``, or 0 where it is unset or empty."""
    return int(os.environ.get("ROS_DOMAIN_ID") or 0)


def shared_domain_warning(domain_id: int | None = None) -> str | None:
    """What to tell a user whose graph is about to join a domain that other participants on this host are in already
    (call it before this process joins); None where the domain is free or it cannot tell.

    Args:
        domain_id: the domain about to be joined (default: :func:`current_domain_id`).
    """
    domain_id = current_domain_id() if domain_id is None else domain_id
    if not domain_in_use(domain_id):
        return None
    return (f"ROS domain {domain_id} already has DDS participants on this host: their topics (/clock, /joint_states, "
            f"models, episode ends) mix with this run's; give this run a domain of its own, e.g. "
            f"ROS_DOMAIN_ID={unused_domain_id(preferred=domain_id)}")
