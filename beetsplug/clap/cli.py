"""The clap commands' names, help and option parsers; the plugin attaches handlers."""

from __future__ import annotations

from beets import ui


def _flag(cmd: ui.Subcommand, *names: str, help: str) -> None:
    """An on/off option, off unless given."""
    cmd.parser.add_option(*names, action="store_true", default=False, help=help)


def _add_result_options(cmd: ui.Subcommand) -> None:
    cmd.parser.add_option(
        "-n",
        "--number",
        dest="number",
        type="int",
        default=None,
        help="how many results (default: clap.limit)",
    )
    _flag(cmd, "-s", "--score", help="print the score before each result")


def _index_command() -> ui.Subcommand:
    cmd = ui.Subcommand("clap-index", help="embed tracks for description search")
    cmd.parser.usage += " [QUERY]"
    _flag(cmd, "-f", "--force", help="re-embed every matched track, changed or not")
    _flag(cmd, "-p", "--pretend", help="show what would be embedded, change nothing")
    cmd.parser.add_option(
        "-j",
        "--jobs",
        type="int",
        default=None,
        help="decoding processes (default: clap.jobs, 0 = all cores)",
    )
    return cmd


def _search_command() -> ui.Subcommand:
    cmd = ui.Subcommand("clap", help="search tracks by description")
    cmd.parser.usage += (
        ' TEXT [QUERY]\nExample: %prog "jazz without vocals" year:1990..1999'
        "\n       %prog \"without vocals\" --like 'title:So What'"
    )
    cmd.parser.add_option(
        "--like",
        action="append",
        default=[],
        metavar="QUERY",
        help="also rank by similarity to the tracks QUERY matches (repeatable)",
    )
    cmd.parser.add_option(
        "--unlike",
        action="append",
        default=[],
        metavar="QUERY",
        help="rank down what sounds like the tracks QUERY matches (repeatable)",
    )
    _add_result_options(cmd)
    cmd.parser.add_album_option()
    cmd.parser.add_format_option()
    _flag(
        cmd,
        "-e",
        "--explain",
        help="print how the description was understood before the results",
    )
    return cmd


def _similar_command() -> ui.Subcommand:
    cmd = ui.Subcommand("clap-similar", help="tracks that sound like the matched ones")
    cmd.parser.usage += " QUERY"
    _add_result_options(cmd)
    cmd.parser.add_format_option(target="item")
    cmd.parser.add_option(
        "--without",
        metavar="TEXT",
        default=None,
        help='leave out what TEXT names: the same as clap "without TEXT" --like',
    )
    _flag(
        cmd,
        "-e",
        "--explain",
        help="print the seeds and the weights before the results",
    )
    return cmd


def _path_command() -> ui.Subcommand:
    cmd = ui.Subcommand("clap-path", help="a path of tracks from one track to another")
    cmd.parser.usage += " FROM TO [QUERY]"
    cmd.parser.add_option(
        "-n",
        "--number",
        dest="number",
        type="int",
        default=None,
        help="how many tracks, both ends included (default 12)",
    )
    _flag(cmd, "-s", "--score", help="print each track's fit to its waypoint first")
    cmd.parser.add_option(
        "--m3u",
        metavar="FILE",
        default=None,
        help="also write the path as an M3U playlist",
    )
    cmd.parser.add_format_option(target="item")
    return cmd


def _playlists_command() -> ui.Subcommand:
    cmd = ui.Subcommand(
        "clap-playlists", help="write prompt and automatic M3U playlists"
    )
    _flag(cmd, "-p", "--pretend", help="list what would be written, write nothing")
    cmd.parser.add_option(
        "--clusters",
        type="int",
        default=None,
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
    cmd = ui.Subcommand("clap-web", help="search page in the browser")
    cmd.parser.add_option(
        "--host", default="127.0.0.1", help="address to listen on (%default)"
    )
    cmd.parser.add_option(
        "--port", type="int", default=8338, help="port to listen on (%default)"
    )
    return cmd


def _map_command() -> ui.Subcommand:
    cmd = ui.Subcommand(
        "clap-map", help="write a 2-D map of the library as one HTML file"
    )
    cmd.parser.usage += " [QUERY] -o FILE.html"
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
