"""The clap commands' names, help and option parsers; the plugin attaches handlers."""

from __future__ import annotations

from beets import ui


def _command(name: str, help: str, usage: str = "") -> ui.Subcommand:
    """A subcommand whose usage line ends with `usage` (its arguments)."""
    cmd = ui.Subcommand(name, help=help)
    cmd.parser.usage += usage
    return cmd


def _flag(cmd: ui.Subcommand, *names: str, help: str) -> None:
    """An on/off option, off unless given."""
    cmd.parser.add_option(*names, action="store_true", default=False, help=help)


def _number(cmd: ui.Subcommand, *names: str, help: str) -> None:
    """A whole-number option, None unless given (the command picks the default)."""
    cmd.parser.add_option(*names, type="int", default=None, help=help)


def _text(cmd: ui.Subcommand, name: str, metavar: str, help: str) -> None:
    """An option taking one value, None unless given."""
    cmd.parser.add_option(name, metavar=metavar, default=None, help=help)


def _queries(cmd: ui.Subcommand, name: str, help: str) -> None:
    """A repeatable option, each value a beets query; [] unless given."""
    cmd.parser.add_option(name, action="append", default=[], metavar="QUERY", help=help)


def _add_result_options(cmd: ui.Subcommand) -> None:
    _number(cmd, "-n", "--number", help="how many results (default: clap.limit)")
    _flag(cmd, "-s", "--score", help="print the score before each result")


def _explain_option(cmd: ui.Subcommand, what: str) -> None:
    """-e/--explain: print `what` (how the ranking came about) first."""
    _flag(cmd, "-e", "--explain", help=f"print {what} before the results")


def _index_command() -> ui.Subcommand:
    cmd = _command("clap-index", "embed tracks for description search", " [QUERY]")
    _flag(cmd, "-f", "--force", help="re-embed every matched track, changed or not")
    _flag(cmd, "-p", "--pretend", help="show what would be embedded, change nothing")
    _number(
        cmd,
        "-j",
        "--jobs",
        help="worker processes, each decoding and embedding whole tracks "
        "(default: clap.jobs, 0 = all cores)",
    )
    return cmd


def _search_command() -> ui.Subcommand:
    cmd = _command(
        "clap",
        "search tracks by description",
        ' TEXT [QUERY]\nExample: %prog "jazz without vocals" year:1990..1999'
        "\n       %prog \"without vocals\" --like 'title:So What'",
    )
    _queries(
        cmd,
        "--like",
        help="also rank by similarity to the tracks QUERY matches (repeatable)",
    )
    _queries(
        cmd,
        "--unlike",
        help="rank down what sounds like the tracks QUERY matches (repeatable)",
    )
    _add_result_options(cmd)
    cmd.parser.add_album_option()
    cmd.parser.add_format_option()
    _explain_option(cmd, "how the description was understood")
    return cmd


def _similar_command() -> ui.Subcommand:
    cmd = _command("clap-similar", "tracks that sound like the matched ones", " QUERY")
    _add_result_options(cmd)
    cmd.parser.add_format_option(target="item")
    _text(
        cmd,
        "--without",
        "TEXT",
        help='leave out what TEXT names: the same as clap "without TEXT" --like',
    )
    _explain_option(cmd, "the seeds and how they rank the tracks")
    return cmd


def _path_command() -> ui.Subcommand:
    cmd = _command(
        "clap-path", "a path of tracks from one track to another", " FROM TO [QUERY]"
    )
    _number(
        cmd,
        "-n",
        "--number",
        help="how many tracks, both ends included (default 12)",
    )
    _flag(cmd, "-s", "--score", help="print each track's fit to its waypoint first")
    _text(cmd, "--m3u", "FILE", help="also write the path as an M3U playlist")
    cmd.parser.add_format_option(target="item")
    return cmd


def _playlists_command() -> ui.Subcommand:
    cmd = _command("clap-playlists", "write prompt and automatic M3U playlists")
    _flag(cmd, "-p", "--pretend", help="list what would be written, write nothing")
    _number(
        cmd,
        "--clusters",
        help="automatic playlists from this many clusters (default: clap.clusters)",
    )
    cmd.parser.add_option(
        "--no-auto",
        dest="auto_playlists",
        action="store_false",
        default=None,
        help="prompt playlists only",
    )
    return cmd


def _web_command() -> ui.Subcommand:
    cmd = _command("clap-web", "search page in the browser")
    cmd.parser.add_option(
        "--host", default="127.0.0.1", help="address to listen on (%default)"
    )
    cmd.parser.add_option(
        "--port", type="int", default=8338, help="port to listen on (%default)"
    )
    return cmd


def _map_command() -> ui.Subcommand:
    cmd = _command(
        "clap-map",
        "write a 2-D map of the library as one HTML file",
        " [QUERY] -o FILE.html",
    )
    cmd.parser.add_option("-o", "--output", help="the HTML file to write")
    cmd.parser.add_option(
        "--color", default=None, help="colour by this beets field (e.g. genre)"
    )
    cmd.parser.add_option(
        "--layout",
        default="tsne",
        help="tsne (neighbours kept together, default) or pca (fastest)",
    )
    return cmd


def subcommands() -> list[ui.Subcommand]:
    """Every clap command with its parser, in `beet help` order, without a
    handler: the plugin sets each `func`."""
    return [
        _index_command(),
        _search_command(),
        _similar_command(),
        _path_command(),
        _playlists_command(),
        _web_command(),
        _map_command(),
    ]
