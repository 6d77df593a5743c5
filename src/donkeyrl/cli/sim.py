"""``donkeyrl sim serve``: the built-in simulator behind the DonkeyCar TCP protocol."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from donkeyrl.cli.common import CLIError, bounded

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sim`` and its ``serve`` subcommand."""
    sim = subparsers.add_parser("sim", help="DonkeyCar simulator tools (serve the built-in simulator)",
                                description="Tools around the DonkeyCar simulator protocol.")
    sub = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", required=True)
    serve = sub.add_parser(
        "serve", help="serve the built-in simulator over the DonkeyCar TCP protocol",
        description="Run a headless DonkeyCar-compatible simulator: any DonkeyCar client "
        "(gym-donkeycar, donkeyrl --sim donkey) can connect to it. One car per connection.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; "
                       "0.0.0.0 exposes it to the network)")
    serve.add_argument("--port", type=bounded(int, 0, 65535), default=9091,
                       help="TCP port (default 9091, the DonkeyCar simulator's; 0 = any free port)")
    serve.add_argument("--track", default=None, metavar="NAME",
                       help="start every connection in this scene instead of the menu "
                       "(see `donkeyrl tracks`); default: the menu, clients choose with load_scene")
    serve.add_argument("--fast", action="store_true",
                       help="step once per control message, answering with one telemetry, as fast "
                       "as the client goes (for training); default: real time at 20 Hz like the "
                       "Unity simulator")
    serve.add_argument("--jpeg-quality", type=bounded(int, 1, 100), default=75,
                       help="JPEG quality of the camera images, 1..100 (default 75, Unity's)")
    serve.add_argument("--max-clients", type=bounded(int, 1, 1024), default=16,
                       help="most simultaneous connections (cars, default 16); when full, a "
                       "newcomer replaces the connection inactive longest if it has been inactive "
                       "for --handshake-timeout, else it is refused")
    serve.add_argument("--handshake-timeout", type=bounded(float, 0, 1e6), default=60.0, metavar="SECONDS",
                       help="close a connection that has not loaded a scene within this time "
                       "(default 60; 0 = never)")
    serve.add_argument("--idle-timeout", type=bounded(float, 0, 1e6), default=300.0, metavar="SECONDS",
                       help="close a connection whose client sent nothing and whose car did not "
                       "move 1 unit for this long (default 300, the Unity simulator's; 0 = never)")
    serve.add_argument("--randomize", action="store_true",
                       help="serve domain-randomised frames: every connection gets a new random "
                       "look (colours, lighting, texture, lines, camera jitter) at each scene load, "
                       "reset_car and regen_road, reproducible with --seed")
    serve.add_argument("--no-quit", action="store_true",
                       help="ignore quit_app messages instead of stopping the server")
    serve.add_argument("--seed", type=bounded(int, 0, 2**63 - 1), default=None,
                       help="seed of the server's random choices: generated roads and, with "
                       "--randomize, the looks (default: random)")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C, SIGTERM or a client's quit_app."""
    from donkeyrl.donkey.server import DonkeySimServer, ServerConfig

    config = ServerConfig(host=args.host, port=args.port, track=args.track, fast=args.fast,
                          jpeg_quality=args.jpeg_quality, max_clients=args.max_clients,
                          handshake_timeout=args.handshake_timeout, idle_timeout=args.idle_timeout,
                          randomize=args.randomize, allow_quit=not args.no_quit, seed=args.seed)
    try:
        server = DonkeySimServer(config)
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    except ValueError as exc:  # unknown --track (the catalogue's message lists the valid names)
        raise CLIError(str(exc)) from exc
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: server.request_stop())
    print(f"donkeyrl sim: serving on {server.host}:{server.port} "
          f"({'fast' if args.fast else 'real-time'}; "
          f"{'randomised looks; ' if args.randomize else ''}"
          f"{'scene ' + args.track if args.track else 'menu'}); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.request_stop()
    return 0
