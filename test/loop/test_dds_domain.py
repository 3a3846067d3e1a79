"""Which ROS domains are in use on this host, from the UDP ports their participants bind; the runner's warning."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import rclpy

from mbrl_ros.nodes.dds_domain import (
    bound_udp_ports,
    domain_in_use,
    domain_ports,
    shared_domain_warning,
    unused_domain_id,
)

from support import wait_for


def test_a_bound_udp_socket_shows_in_the_ports():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert port in bound_udp_ports()


def test_ports_are_read_from_the_kernel_tables_and_mapped_to_domains(tmp_path):
    table = tmp_path / "udp"
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
    port = domain_ports(5).start + 12  # participant 1's discovery port in domain 5
    row = f"   7: 0100007F:{port:04X} 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1234"
    table.write_text(f"{header}\n{row}\n")
    ports = bound_udp_ports((table,))
    assert ports == {port}
    assert domain_in_use(5, ports) is True
    assert domain_in_use(4, ports) is False and domain_in_use(6, ports) is False
    assert domain_in_use(150, ports) is None  # its ports overlap the ephemeral range: no verdict
    assert bound_udp_ports((tmp_path / "absent",)) is None
    garbled = tmp_path / "garbled"
    garbled.write_text(f"{header}\nnot a socket line\n")
    assert bound_udp_ports((garbled,)) is None and bound_udp_ports((garbled, table)) == {port}


def test_a_participant_puts_its_domain_in_use_and_the_next_free_one_is_offered():
    domain = unused_domain_id(preferred=1 + (os.getpid() + 50) % 100)
    assert domain_in_use(domain) is False and shared_domain_warning(domain) is None
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    try:
        node = rclpy.create_node("domain_probe", context=context)
        assert wait_for(lambda: domain_in_use(domain), timeout=10)
        other = unused_domain_id(preferred=domain)
        assert other != domain and not domain_in_use(other)
        warning = shared_domain_warning(domain)
        assert f"ROS domain {domain} already has DDS participants" in warning and f"ROS_DOMAIN_ID={other}" in warning
        node.destroy_node()
    finally:
        context.try_shutdown()


def test_the_runner_warns_when_its_domain_is_in_use(ros_executor, tmp_path):
    """A node of this test is a participant in the session's domain, which the run then joins."""
    ros_executor.add_node(rclpy.create_node("neighbour", context=ros_executor.context))
    assert wait_for(lambda: domain_in_use(int(os.environ["ROS_DOMAIN_ID"])), timeout=10)
    process = subprocess.Popen([str(Path(sys.prefix) / "bin" / "mbrl-ros"), "up", "cartpole_swingup", "--episodes",
                                "1", "--run-dir", str(tmp_path / "run")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "already has DDS participants" in line or "episode 1/1" in line:
                break
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert any(f"ROS domain {os.environ['ROS_DOMAIN_ID']} already has DDS participants" in line
               for line in lines), "".join(lines)
