"""HCCL rank tables for Ascend multi-device training (the old ports' ``hccl_tools.py`` format).

Write a table for devices [first, last) of this server, device IPs read from /etc/hccn.conf
(``address_N=IP`` lines, as ``hccn_tool -i N -ip -g`` reports them)::

    python scripts/hccl_tools.py --device_num "[0,8)" [--server_ip IP] [--hccn_conf FILE] [--output_dir DIR]

writes ``hccl_8p_01234567_<server_ip>.json``. Join per-server tables into one multi-server table
(every server's ranks numbered after the previous server's)::

    python scripts/hccl_tools.py --merge hccl_8p_..._IP1.json hccl_8p_..._IP2.json [--output_dir DIR]

Which ranks of a table run on this server (used by scripts/run_distribute_train.sh)::

    python scripts/hccl_tools.py --local_ranks TABLE [--server_id ID]

prints ``RANK_SIZE SERVER_ID`` then one ``RANK_ID DEVICE_ID`` line per local rank. A one-server
table is always local; with ``server_count`` >= 2 the server is the one whose ``server_id``
equals ``--server_id`` (default: env SERVER_ID) or, without one, any IP address of this host.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path


class RankTableError(Exception):
    pass


def parse_device_range(text):
    """``"[0,8)"`` -> [0, ..., 7]; the half-open range must lie in [0, 8] (one server)."""
    match = re.fullmatch(r"\s*\[\s*(\d+)\s*,\s*(\d+)\s*\)\s*", text)
    if not match:
        raise RankTableError(f"--device_num must look like \"[0,8)\" (first, last exclusive), got {text!r}")
    first, last = int(match[1]), int(match[2])
    if not 0 <= first < last <= 8:
        raise RankTableError(f"--device_num {text}: need 0 <= first < last <= 8")
    if first < 4 < last and (first, last) != (0, 8):
        # Ascend 910 servers link chips 0-3 and 4-7; only all 8 may span both groups
        raise RankTableError(f"--device_num {text}: a range crossing chips 3/4 must be [0,8)")
    return list(range(first, last))


def read_hccn_conf(path):
    """{device id (str): device IP} from the ``address_N=IP`` lines of an hccn.conf."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RankTableError(f"cannot read {path}: {exc.strerror} (pass --hccn_conf FILE)") from exc
    ips = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\s*address_(\d+)\s*=\s*(\S+)\s*", line)
        if match:
            ips[match[1]] = match[2]
    return ips


def host_ips():
    """Every IP address of this host (IPv4 and IPv6), loopback included."""
    ips = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            ips.add(info[4][0])
    except OSError:
        pass
    try:
        out = subprocess.run(["ip", "-o", "addr"], check=False, capture_output=True, text=True,
                             timeout=10).stdout
        ips.update(m.split("/")[0] for m in re.findall(r"\binet6? (\S+)", out))
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        out = subprocess.run(["hostname", "-I"], check=False, capture_output=True, text=True,
                             timeout=10).stdout
        ips.update(out.split())
    except (OSError, subprocess.SubprocessError):
        pass
    return ips


def detect_server_ip():
    """This host's address as the other servers see it (the route to a public address; no
    packet is sent), else the hostname's address."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("8.8.8.8", 80))
            return sock.getsockname()[0]
    except OSError:
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError as exc:
            raise RankTableError("cannot detect this server's IP: pass --server_ip") from exc


def build_table(devices, device_ips, server_id, visible_devices=None):
    """One-server rank table; ``visible_devices`` maps logical ids to physical ones (docker)."""
    visible = visible_devices or [str(i) for i in range(8)]
    entries = []
    for rank, logical in enumerate(devices):
        if logical >= len(visible):
            raise RankTableError(f"device {logical} is not among --visible_devices {','.join(visible)}")
        device_id = visible[logical]
        if device_id not in device_ips:
            raise RankTableError(f"no address_{device_id}= line for device {device_id} in the hccn.conf "
                                 f"(found devices {sorted(device_ips, key=int)})")
        entries.append({"device_id": device_id, "device_ip": device_ips[device_id], "rank_id": str(rank)})
    return {"version": "1.0", "server_count": "1",
            "server_list": [{"server_id": server_id, "device": entries, "host_nic_ip": "reserve"}],
            "status": "completed"}


def merge_tables(tables):
    """Multi-server table: servers in the given order, rank ids continuing across servers."""
    servers, rank = [], 0
    for table in tables:
        for server in table["server_list"]:
            devices = []
            for dev in server["device"]:
                devices.append(dict(dev, rank_id=str(rank)))
                rank += 1
            servers.append(dict(server, device=devices))
    ids = [s["server_id"] for s in servers]
    if len(set(ids)) != len(ids):
        raise RankTableError(f"server ids repeat across the tables: {ids}")
    return {"version": "1.0", "server_count": str(len(servers)), "server_list": servers,
            "status": "completed"}


def load_table(path):
    path = Path(path)
    try:
        table = json.loads(path.read_text())
        servers = table["server_list"]
        for server in servers:
            for dev in server["device"]:
                int(dev["rank_id"]), int(dev["device_id"])
            if "server_id" not in server:
                raise KeyError("server_id")
    except OSError as exc:
        raise RankTableError(f"cannot read rank table {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise RankTableError(f"{path} is not an HCCL rank table (expected server_list[].server_id and "
                             f"server_list[].device[].rank_id/device_id): {exc!r}") from exc
    if not servers or not any(s["device"] for s in servers):
        raise RankTableError(f"rank table {path} lists no devices")
    return table


def local_ranks(table, server_id=None, ips=None):
    """(rank size, server id, [(rank id, device id), ...]) of the server this process runs on."""
    servers = table["server_list"]
    size = sum(len(s["device"]) for s in servers)
    if len(servers) == 1:
        server = servers[0]
    else:
        wanted = {server_id} if server_id else (host_ips() if ips is None else set(ips))
        matches = [s for s in servers if s["server_id"] in wanted]
        if len(matches) != 1:
            how = f"SERVER_ID={server_id}" if server_id else f"this host's IPs {sorted(wanted)}"
            raise RankTableError(f"{how} match {len(matches)} of the table's servers "
                                 f"{[s['server_id'] for s in servers]}: set SERVER_ID to this server's "
                                 f"server_id")
        server = matches[0]
    ranks = sorted((int(d["rank_id"]), int(d["device_id"])) for d in server["device"])
    return size, server["server_id"], ranks


def _write(table, out_dir, name):
    out = Path(out_dir) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=4) + "\n")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python scripts/hccl_tools.py", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--device_num", default="[0,8)", help='devices of this server, e.g. "[0,8)" or "[0,4)"')
    mode.add_argument("--merge", nargs="+", metavar="TABLE", help="join per-server tables")
    mode.add_argument("--local_ranks", metavar="TABLE", help="print this server's ranks of TABLE")
    parser.add_argument("--visible_devices", default="0,1,2,3,4,5,6,7",
                        help="physical ids of the logical devices 0..7 (containers)")
    parser.add_argument("--server_ip", help="this server's IP (default: detected)")
    parser.add_argument("--hccn_conf", default="/etc/hccn.conf", help="device IPs (address_N=IP lines)")
    parser.add_argument("--output_dir", default=".", help="folder of the written table")
    parser.add_argument("--server_id", default=os.environ.get("SERVER_ID"),
                        help="with --local_ranks: this server's server_id (default: env SERVER_ID)")
    args = parser.parse_args(argv)
    try:
        if args.local_ranks:
            size, server, ranks = local_ranks(load_table(args.local_ranks), args.server_id)
            print(size, server)
            for rank, device in ranks:
                print(rank, device)
            return 0
        if args.merge:
            table = merge_tables([load_table(p) for p in args.merge])
            n = sum(len(s["device"]) for s in table["server_list"])
            out = _write(table, args.output_dir, f"hccl_{n}p_{table['server_count']}s.json")
        else:
            devices = parse_device_range(args.device_num)
            server_ip = args.server_ip or detect_server_ip()
            table = build_table(devices, read_hccn_conf(args.hccn_conf), server_ip,
                                args.visible_devices.split(","))
            out = _write(table, args.output_dir,
                         f"hccl_{len(devices)}p_{''.join(map(str, devices))}_{server_ip}.json")
    except RankTableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"rank table written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
