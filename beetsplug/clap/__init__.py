"""Search a beets library by description, negations included (CLAP)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, ClassVar

from beets import ui
from beets.dbcore.query import FieldQuery
from beets.plugins import BeetsPlugin
from beets.ui import UserError
from beets.util import displayable_path

from .guards import guarded, require_runtime
from .named_query import ClapAlbumQuery, ClapQuery
from .progress import ProgressBar
from .settings import DEFAULTS, SettingsError, validated

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from beets.importer import ImportSession, ImportTask
    from beets.library import Album, Item, Library

    from .model import Bundle
    from .store import Store


def _nothing_found(
    query: Sequence[str], matched: Collection[int] | None, kind: str
) -> str:
    """Why a search printed nothing, in one line (`kind`: tracks or albums)."""
    text = " ".join(query)
    if matched is None:
        return "none of the indexed tracks is in the library: run `beet clap-index`"
    if not matched:
        return f"no {kind} match {text}"
    if len(matched) == 1:
        what = "is not indexed" if kind == "tracks" else "has no indexed track"
        return f"the one {kind[:-1]} matching {text} {what} yet: run `beet clap-index`"
    what = "is indexed" if kind == "tracks" else "has an indexed track"
    return (
        f"none of the {len(matched)} {kind} matching {text} {what} yet: "
        "run `beet clap-index`"
    )


def _track_name(lib: Library, item_id: int) -> str:
    """ "artist - title" of an item, for --explain and error lines."""
    item = lib.get_item(item_id)
    return f"item {item_id}" if item is None else f"{item.artist} - {item.title}"


class ClapPlugin(BeetsPlugin):
    """Commands `clap-index`, `clap`, `clap-similar`, `clap-path`, the `clap:`
    query, the `$clap_score` field, and embedding on import (`auto`)."""

    item_queries: ClassVar[dict[str, type[FieldQuery]]] = {"clap": ClapQuery}
    album_queries: ClassVar[dict[str, type[FieldQuery]]] = {"clap": ClapAlbumQuery}

    def __init__(self) -> None:
        super().__init__()
        self.config.add(DEFAULTS)
        self._config_error: UserError | None = None
        self.settings: dict[str, Any] = {}
        try:
            self.settings = validated(self.config)
        except SettingsError as exc:
            # beets turns exceptions raised here into a traceback and drops
            # the plugin; keep it loaded and refuse its commands instead.
            self._config_error = UserError(str(exc))
            self._log.error("{}", exc)
        self._bundle: Bundle | None = None
        self._stores: dict[str, Store] = {}
        self._scores: dict[int, float] = {}
        self._album_scores: dict[int, float] = {}
        self._removed: set[int] = set()
        self._imported: set[int] = set()  # embedded by the import stage
        self.template_fields["clap_score"] = self._item_score
        self.album_template_fields["clap_score"] = self._album_score
        self.register_listener("item_removed", self._on_item_removed)
        self.register_listener("cli_exit", self._on_cli_exit)
        if self.settings.get("auto"):
            self.import_stages = [self._import_stage]
            self.register_listener("import_task_files", self._on_import_task_files)
            self.register_listener("import", self._on_import_done)

    # Configuration ----------------------------------------------------------

    def _check_config(self) -> None:
        if self._config_error is not None:
            raise self._config_error

    # Shared resources, opened once per command ------------------------------

    def bundle(self, audio: bool = False) -> Bundle:
        """The configured model bundle, loaded (and validated) on first use.

        Searches need only the text tower; `audio=True` (indexing) also
        opens and checks audio.onnx, before any file is decoded.
        """
        self._check_config()
        if self._bundle is None:
            require_runtime()
        from .model import Bundle, BundleError

        try:
            if self._bundle is None:
                self._bundle = Bundle.load(
                    self.settings["model"],
                    threads=self.settings["threads"],
                    audio=False,
                )
                self._log.debug(
                    "model bundle {} from {}", self._bundle.label, self._bundle.path
                )
            if audio:
                self._bundle.open_audio()
        except BundleError as exc:
            raise UserError(str(exc)) from exc
        return self._bundle

    def store(self, db_path: Any = None) -> Store:
        """The plugin's own connection to library.db (sqlite-vec loaded)."""
        self._check_config()
        from beets import config

        path = os.fsdecode(
            db_path if db_path is not None else config["library"].as_filename()
        )
        if path not in self._stores:
            from . import coarse
            from .store import Store, StoreError

            coarse.set_threads(self.settings["threads"])
            try:
                self._stores[path] = Store.open(path)
            except StoreError as exc:
                raise UserError(str(exc)) from exc
        return self._stores[path]

    def _weight(self) -> float:
        from .search import resolve_negation_weight

        return resolve_negation_weight(self.settings["negation_weight"], self.bundle())

    def _embed(self, text: str) -> Any:
        """The description parsed and embedded with the configured weights."""
        from .search import embed_query

        return embed_query(
            self.bundle(),
            text,
            self._weight(),
            self.settings["tag_weight"],
            self.settings["affirmed_tag_weight"],
        )

    def _searching(self, run: Callable[[], Any]) -> Any:
        """Run a search, turning its one-line errors into UserError."""
        from .search import SearchError
        from .store import StoreError

        try:
            return run()
        except (SearchError, StoreError) as exc:
            raise UserError(str(exc)) from exc

    # Template fields ----------------------------------------------------------

    def _item_score(self, item: Item) -> float | None:
        score = self._scores.get(item.id)
        return None if score is None else round(score, 4)

    def _album_score(self, album: Album) -> float | None:
        score = self._album_scores.get(album.id)
        return None if score is None else round(score, 4)

    # Commands -------------------------------------------------------------

    def commands(self) -> list[ui.Subcommand]:
        index_cmd = ui.Subcommand(
            "clap-index", help="embed tracks for description search"
        )
        index_cmd.parser.usage += " [QUERY]"
        index_cmd.parser.add_option(
            "-f",
            "--force",
            action="store_true",
            default=False,
            help="re-embed every matched track, changed or not",
        )
        index_cmd.parser.add_option(
            "-p",
            "--pretend",
            action="store_true",
            default=False,
            help="show what would be embedded, change nothing",
        )
        index_cmd.parser.add_option(
            "-j",
            "--jobs",
            type="int",
            default=None,
            help="decoding processes (default: clap.jobs, 0 = all cores)",
        )
        index_cmd.func = self._cmd_index

        search_cmd = ui.Subcommand("clap", help="search tracks by description")
        search_cmd.parser.usage += (
            ' TEXT [QUERY]\nExample: %prog "jazz without vocals" year:1990..1999'
            "\n       %prog \"without vocals\" --like 'title:So What'"
        )
        search_cmd.parser.add_option(
            "--like",
            action="append",
            default=[],
            metavar="QUERY",
            help="also rank by similarity to the tracks QUERY matches (repeatable)",
        )
        search_cmd.parser.add_option(
            "--unlike",
            action="append",
            default=[],
            metavar="QUERY",
            help="rank down what sounds like the tracks QUERY matches (repeatable)",
        )
        self._add_result_options(search_cmd)
        search_cmd.parser.add_album_option()
        search_cmd.parser.add_format_option()
        search_cmd.parser.add_option(
            "-e",
            "--explain",
            action="store_true",
            default=False,
            help="print how the description was understood before the results",
        )
        search_cmd.func = self._cmd_search

        similar_cmd = ui.Subcommand(
            "clap-similar", help="tracks that sound like the matched ones"
        )
        similar_cmd.parser.usage += " QUERY"
        self._add_result_options(similar_cmd)
        similar_cmd.parser.add_format_option(target="item")
        similar_cmd.parser.add_option(
            "--without",
            metavar="TEXT",
            default=None,
            help='leave out what TEXT names: the same as clap "without TEXT" --like',
        )
        similar_cmd.parser.add_option(
            "-e",
            "--explain",
            action="store_true",
            default=False,
            help="print the seeds and the weights before the results",
        )
        similar_cmd.func = self._cmd_similar

        path_cmd = ui.Subcommand(
            "clap-path", help="a path of tracks from one track to another"
        )
        path_cmd.parser.usage += " FROM TO [QUERY]"
        path_cmd.parser.add_option(
            "-n",
            "--number",
            dest="number",
            type="int",
            default=None,
            help="how many tracks, both ends included (default 12)",
        )
        path_cmd.parser.add_option(
            "-s",
            "--score",
            action="store_true",
            default=False,
            help="print each track's fit to its waypoint first",
        )
        path_cmd.parser.add_option(
            "--m3u",
            metavar="FILE",
            default=None,
            help="also write the path as an M3U playlist",
        )
        path_cmd.parser.add_format_option(target="item")
        path_cmd.func = self._cmd_path
        playlists_cmd = ui.Subcommand(
            "clap-playlists", help="write prompt and automatic M3U playlists"
        )
        playlists_cmd.parser.add_option(
            "-p",
            "--pretend",
            action="store_true",
            default=False,
            help="list what would be written, write nothing",
        )
        playlists_cmd.parser.add_option(
            "--clusters",
            type="int",
            default=None,
            help="automatic playlists from this many clusters (default: clap.clusters)",
        )
        playlists_cmd.parser.add_option(
            "--no-auto",
            dest="auto_playlists",
            action="store_false",
            default=None,
            help="prompt playlists only",
        )
        playlists_cmd.func = self._cmd_playlists
        commands = [index_cmd, search_cmd, similar_cmd, path_cmd, playlists_cmd]
        commands += self._view_commands()
        for cmd in commands:
            cmd.func = guarded(self._check_config, cmd.func)
        return commands

    def _add_result_options(self, cmd: ui.Subcommand) -> None:
        cmd.parser.add_option(
            "-n",
            "--number",
            dest="number",
            type="int",
            default=None,
            help="how many results (default: clap.limit)",
        )
        cmd.parser.add_option(
            "-s",
            "--score",
            action="store_true",
            default=False,
            help="print the score before each result",
        )

    def _view_commands(self) -> list[ui.Subcommand]:
        """`clap-web` (web.py) and `clap-map` (mapview.py)."""
        web_cmd = ui.Subcommand("clap-web", help="search page in the browser")
        web_cmd.parser.add_option(
            "--host", default="127.0.0.1", help="address to listen on (%default)"
        )
        web_cmd.parser.add_option(
            "--port", type="int", default=8338, help="port to listen on (%default)"
        )

        def run_web(lib: Library, opts: Any, args: list[str]) -> None:
            try:
                import flask  # noqa: F401
            except ImportError as exc:
                raise UserError(
                    "clap-web needs Flask: pip install 'beets-clap[web]'"
                ) from exc
            from . import mapview, web

            if args:
                raise UserError("clap-web takes no query: type it on the page")
            bundle, store = self.bundle(), self.store(lib.path)
            backend = web.Backend(
                lib, store, bundle, self._embed, mapview.known_fields(lib)
            )
            if (problem := backend.index_problem()) is not None:
                self._log.warning("clap-web: {} (the page says so too)", problem)
            if not web.is_loopback(opts.host):
                self._log.warning(
                    "clap-web: listening on {}: anyone who reaches it can "
                    "search and play the library",
                    opts.host,
                )
            app = web.create_app(backend, self.settings["limit"])

            def announce(line: str) -> None:
                ui.print_(line)
                sys.stdout.flush()  # seen at once, even through a pipe

            try:
                web.serve(app, opts.host, opts.port, announce)
            except web.WebError as exc:
                raise UserError(str(exc)) from exc

        web_cmd.func = run_web

        map_cmd = ui.Subcommand(
            "clap-map", help="write a 2-D map of the library as one HTML file"
        )
        map_cmd.parser.usage += " [QUERY] -o FILE.html"
        map_cmd.parser.add_option("-o", "--output", help="the HTML file to write")
        map_cmd.parser.add_option(
            "--color", default=None, help="colour by this beets field (e.g. genre)"
        )
        map_cmd.parser.add_option(
            "--layout",
            default="tsne",
            help="tsne (neighbours kept together, default) or pca (fastest)",
        )

        def run_map(lib: Library, opts: Any, args: list[str]) -> None:
            from . import mapview

            if not opts.output:
                raise UserError("give the file to write: beet clap-map -o map.html")
            bundle, store = self.bundle(), self.store(lib.path)
            try:
                data = self._searching(
                    lambda: mapview.library_map(
                        lib, store, bundle, args, opts.color, opts.layout
                    )
                )
            except mapview.MapError as exc:
                raise UserError(str(exc)) from exc
            try:
                with open(opts.output, "w", encoding="utf-8") as out:
                    out.write(mapview.map_html(data))
            except OSError as exc:
                raise UserError(f"cannot write {opts.output}: {exc.strerror}") from exc
            ui.print_(
                f"clap-map: wrote {opts.output} ({len(data['ids'])} tracks, "
                f"{len(data['regions'])} regions)"
            )

        map_cmd.func = run_map
        return [web_cmd, map_cmd]

    def _limit(self, opts: Any) -> int:
        self._check_config()
        number = self.settings["limit"] if opts.number is None else opts.number
        if number < 1:
            raise UserError("-n/--number must be at least 1")
        return number

    def _cmd_index(self, lib: Library, opts: Any, args: list[str]) -> None:
        from . import index

        self._check_config()
        jobs = self.settings["jobs"] if opts.jobs is None else opts.jobs
        if jobs < 0:
            raise UserError("-j/--jobs must be 0 (all cores) or more")
        jobs = jobs or os.cpu_count() or 1
        bundle, store = self.bundle(audio=True), self.store(lib.path)
        items = [(item.id, os.fsdecode(item.path)) for item in lib.items(args)]
        plan = index.plan(items, store.states(), bundle.identity, force=opts.force)
        if opts.pretend:
            for work in plan.todo:
                ui.print_(f"would embed ({work.reason}): {displayable_path(work.path)}")
            ui.print_(
                f"clap-index: would embed {len(plan.todo)}, unchanged {plan.unchanged}"
            )
            return
        self._log.debug(
            "embedding {} tracks with {} decoding job(s)", len(plan.todo), jobs
        )
        try:
            summary = self._searching(
                lambda: index.run(
                    store,
                    bundle,
                    plan.todo,
                    jobs=jobs,
                    batch_size=self.settings["batch_size"],
                    max_windows=self.settings["max_windows"] or None,
                    progress=ProgressBar("clap-index"),
                    log=self._log,
                )
            )
        except index.IndexingError as exc:
            raise UserError(str(exc)) from exc
        if summary.dropped:
            self._log.info(
                "dropped {} vectors of a previous model bundle", summary.dropped
            )
        for work, error in summary.failed:
            ui.print_(f"failed: {displayable_path(work.path)}: {error}")
        ui.print_(
            f"clap-index: embedded {summary.embedded}, unchanged {plan.unchanged}, "
            f"failed {len(summary.failed)}"
        )

    def _print_ranked(
        self,
        ranked: list[tuple[int, float]],
        get: Callable[[int], Any],
        show_score: bool,
    ) -> int:
        """Print (id, score) results with the user's format, best first;
        returns how many were printed."""
        printed = 0
        for obj_id, score in ranked:
            obj = get(obj_id)
            if obj is None:  # removed since it was embedded
                continue
            line = format(obj)
            ui.print_(f"{score:.3f} {line}" if show_score else line)
            printed += 1
        return printed

    @staticmethod
    def _candidates(lib: Library, query: Any) -> set[int] | None:
        """Ids of the items a beets query matches; None (all) for no query."""
        from .search import matching_ids

        return matching_ids(lib, query)

    def _cmd_search(self, lib: Library, opts: Any, args: list[str]) -> None:
        from . import search

        if opts.like or opts.unlike:
            return self._cmd_composed(lib, opts, args)
        if not args:
            raise UserError('give a description: beet clap "TEXT" [QUERY]')
        text, query = args[0], args[1:]
        limit = self._limit(opts)
        bundle, store = self.bundle(), self.store(lib.path)
        tq = self._searching(lambda: self._embed(text))
        if opts.explain:
            ui.print_(tq.explain())
        if opts.album:
            album_ids = search.matching_ids(lib, query, albums=True)
            ranked = self._searching(
                lambda: search.rank_albums(store, bundle, tq, limit, album_ids)
            )
            self._album_scores.update(ranked)
            if not self._print_ranked(ranked, lib.get_album, opts.score):
                self._log.info("{}", _nothing_found(query, album_ids, "albums"))
            return
        candidates = self._candidates(lib, query)
        ranked = self._searching(
            lambda: search.rank_items(store, bundle, tq, limit, candidates)
        )
        self._scores.update(ranked)
        if not self._print_ranked(ranked, lib.get_item, opts.score):
            self._log.info("{}", _nothing_found(query, candidates, "tracks"))

    def _cmd_composed(self, lib: Library, opts: Any, args: list[str]) -> None:
        """`beet clap [TEXT] --like QUERY [--unlike QUERY] [QUERY]`."""
        from .compose import description_and_query

        text, query = description_and_query(args)
        self._run_composed(lib, opts, text, opts.like, opts.unlike, query)

    def _run_composed(
        self,
        lib: Library,
        opts: Any,
        text: str | None,
        likes: Sequence[str | Sequence[str]],
        unlikes: Sequence[str | Sequence[str]],
        query: Sequence[str] = (),
    ) -> None:
        """Rank by a description, like seeds and unlike seeds (compose.py);
        `clap --like` and `clap-similar --without` both come here."""
        from . import compose, search

        limit = self._limit(opts)
        if not likes and text is None:
            raise UserError(
                'give a description or --like QUERY: beet clap "TEXT" --unlike QUERY'
            )
        bundle, store = self.bundle(), self.store(lib.path)

        def build() -> compose.ComposedQuery:
            search.check_index(store, bundle)
            seeds = {
                option: [
                    compose.seed_set(
                        store,
                        f"--{option}",
                        q if isinstance(q, str) else " ".join(q),
                        search.matching_ids(lib, q),
                    )
                    for q in queries
                ]
                for option, queries in (("like", likes), ("unlike", unlikes))
            }
            return compose.ComposedQuery(
                None if text is None else self._embed(text),
                seeds["like"],
                seeds["unlike"],
                self.settings["like_weight"],
                self.settings["unlike_weight"],
            )

        composed = self._searching(build)
        if opts.explain:
            ui.print_(composed.explain(lambda i: _track_name(lib, i)))
        if getattr(opts, "album", False):
            album_ids = search.matching_ids(lib, query, albums=True)
            ranked = self._searching(
                lambda: compose.rank_albums(store, bundle, composed, limit, album_ids)
            )
            self._album_scores.update(ranked)
            if not self._print_ranked(ranked, lib.get_album, opts.score):
                self._log.info("{}", _nothing_found(query, album_ids, "albums"))
            return
        candidates = self._candidates(lib, query)
        ranked = self._searching(
            lambda: compose.rank_items(store, bundle, composed, limit, candidates)
        )
        self._scores.update(ranked)
        if not self._print_ranked(ranked, lib.get_item, opts.score):
            if candidates:
                self._log.info(
                    "every track matching {} is a seed: nothing is left to rank",
                    " ".join(query),
                )
            else:
                self._log.info("{}", _nothing_found(query, candidates, "tracks"))

    def _cmd_similar(self, lib: Library, opts: Any, args: list[str]) -> None:
        from . import search

        if not args:
            raise UserError(
                "give a query for the tracks to compare with: beet clap-similar QUERY"
            )
        if opts.without is not None or opts.explain:
            text = None if opts.without is None else f"without {opts.without}"
            return self._run_composed(lib, opts, text, [args], [])
        limit = self._limit(opts)
        bundle, store = self.bundle(), self.store(lib.path)
        seeds = [item.id for item in lib.items(args)]
        ranked = self._searching(
            lambda: search.rank_similar(store, bundle, seeds, limit)
        )
        self._scores.update(ranked)
        if not self._print_ranked(ranked, lib.get_item, opts.score):
            self._log.info(
                "no indexed track besides the {} matched: nothing to compare with",
                len(seeds),
            )

    def _cmd_path(self, lib: Library, opts: Any, args: list[str]) -> None:
        """`beet clap-path FROM TO [-n N] [--m3u FILE] [QUERY]`."""
        from . import paths

        if len(args) < 2:
            raise UserError(
                "give the two ends: beet clap-path FROM TO [QUERY], e.g. "
                "beet clap-path 'title:So What' 'title:Teardrop'"
            )
        length = paths.DEFAULT_LENGTH if opts.number is None else opts.number
        if length < 2:
            raise UserError(
                f"-n/--number must be at least 2 for a path (FROM and TO), not {length}"
            )
        ends = []
        for name, end in (("FROM", args[0]), ("TO", args[1])):
            item = lib.items(end).get()
            if item is None:
                raise UserError(f"{name} {end} matches no track")
            ends.append(item.id)
        query = args[2:]
        candidates = self._candidates(lib, query)
        bundle, store = self.bundle(), self.store(lib.path)
        steps = self._searching(
            lambda: paths.song_path(
                store,
                bundle,
                ends[0],
                ends[1],
                length,
                candidates,
                lambda i: _track_name(lib, i),
            )
        )
        ranked = [(step.item_id, step.fit) for step in steps]
        self._scores.update(ranked)
        self._print_ranked(ranked, lib.get_item, opts.score)
        if len(steps) < length:
            self._log.info(
                "only {} tracks lie between FROM and TO{}: the path is shorter",
                len(steps) - 2,
                f" among those matching {' '.join(query)}" if query else "",
            )
        if opts.m3u:
            self._write_path(lib, opts.m3u, [step.item_id for step in steps])

    def _write_path(self, lib: Library, filename: str, item_ids: list[int]) -> None:
        """The path as an M3U file, written as clap-playlists writes one (a
        relative FILE goes into clap.playlist_dir when that is set)."""
        from .m3u import PlaylistError, write_m3u

        target = os.path.expanduser(filename)
        if not os.path.isabs(target) and self.settings["playlist_dir"]:
            target = os.path.join(self.settings["playlist_dir"], target)
        entries = []
        for item_id in item_ids:
            item = lib.get_item(item_id)
            if item is not None:
                entries.append((item.path, item.length, item.artist, item.title))
        try:
            count = write_m3u(
                target,
                entries,
                extended=self.settings["extended"],
                relative_to=self.settings["relative_to"],
                prefix=self.settings["playlist_prefix"],
            )
        except (OSError, PlaylistError) as exc:
            raise UserError(f"cannot write {target}: {exc}") from exc
        self._log.info("wrote {} ({} tracks)", displayable_path(target), count)

    def _cmd_playlists(self, lib: Library, opts: Any, args: list[str]) -> None:
        if args:
            raise UserError(
                "clap-playlists takes no query: filters go in clap.playlists"
            )
        clusters = self.settings["clusters"] if opts.clusters is None else opts.clusters
        if clusters < 0:
            raise UserError("--clusters must be 0 (chosen from the library) or more")
        auto = self.settings["auto_playlists"]
        update = self._update_playlists(
            lib,
            auto=auto if opts.auto_playlists is None else opts.auto_playlists,
            clusters=clusters,
            pretend=opts.pretend,
        )
        verb = "would write" if opts.pretend else "wrote"
        for playlist, path, count in update.written:
            ui.print_(
                f"{verb} {playlist.name}: {displayable_path(path)} ({count} tracks)"
            )
        for path in update.removed:
            ui.print_(f"removed {displayable_path(path)}")

    def _update_playlists(
        self, lib: Library, auto: bool, clusters: int, pretend: bool = False
    ) -> Any:
        """Write the prompt playlists of clap.playlists and, with `auto`,
        the library's cluster playlists (playlists.update_playlists)."""
        from . import playlists, search

        bundle, store = self.bundle(), self.store(lib.path)

        def rank(text: str, beets_filter: str | None, size: int) -> list:
            tq = self._embed(text)
            candidates = self._candidates(lib, beets_filter)
            return search.rank_items(store, bundle, tq, size, candidates)

        def entry_for(item_id: int) -> Any:
            item = lib.get_item(item_id)
            if item is None:
                return None
            return playlists.PlaylistEntry(
                item.path, item.length, item.artist, item.title
            )

        def library() -> tuple[Any, Any]:
            search.check_index(store, bundle)
            return store.all_vectors(bundle.identity)

        def item_tags(ids: Any) -> Any:
            import numpy as np

            rows = store.tags(int(i) for i in ids)
            found = [rows.get(int(i)) for i in ids]
            width = (len(bundle.tag_names),)
            if any(row is None or row.shape != width for row in found):
                return None  # some items lack tags: the text tower names
            return np.stack(found)  # type: ignore[arg-type]

        settings = self.settings
        try:
            return self._searching(
                lambda: playlists.update_playlists(
                    settings["playlist_dir"] or ".",
                    entry_for,
                    prompts=self.config["playlists"].get(),
                    rank=rank,
                    library=library if auto else None,
                    embed_text=bundle.embed_text,
                    tags=item_tags if bundle.has_tags else None,
                    tag_meanings=bundle.tag_meanings if bundle.has_tags else (),
                    clusters=clusters or None,
                    min_size=settings["cluster_min_size"],
                    auto_size=settings["auto_playlist_size"] or None,
                    default_size=settings["playlist_size"],
                    check_query=search.description_problem,
                    extended=settings["extended"],
                    relative_to=settings["relative_to"],
                    prefix=settings["playlist_prefix"],
                    pretend=pretend,
                )
            )
        except playlists.PlaylistConfigError as exc:
            raise UserError(str(exc)) from exc

    def query_ids(self, text: str) -> set[int]:
        """Item ids a `clap:TEXT` query matches (scores kept for $clap_score)."""
        from . import search

        bundle, store = self.bundle(), self.store()

        def run() -> list[tuple[int, float]]:
            tq = self._embed(text)
            return search.rank_items(store, bundle, tq, self.settings["query_top_k"])

        ranked = self._searching(run)
        self._scores.update(ranked)
        return {item_id for item_id, _ in ranked}

    def query_album_ids(self, text: str) -> set[int]:
        """Albums of the items a `clap:TEXT` query matches."""
        ids = self.query_ids(text)
        return set(self._searching(lambda: self.store().albums_of(ids)).values())

    # Listeners and import stage ---------------------------------------------

    def _on_item_removed(self, item: Item) -> None:
        """Forget a removed item. beets holds its write transaction here, so
        the state rows go through beets' own connection (committed with the
        removal); the vector, which that connection cannot reach, is deleted
        at exit (or by the next clap-index)."""
        from .store import STATE, TAGS

        db = item.db
        with db.transaction() as tx:
            tables = {
                r[0]
                for r in tx.query("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            for table in (STATE, TAGS):
                if table in tables:
                    tx.mutate(f"DELETE FROM {table} WHERE item_id = ?", (item.id,))
        self._removed.add(item.id)

    def _on_cli_exit(self, lib: Library) -> None:
        if self._removed and self._config_error is None:
            from .store import StoreError

            try:
                self.store(lib.path).purge_missing()
            except (StoreError, UserError) as exc:
                self._log.warning("could not drop vectors of removed items: {}", exc)
            self._removed.clear()
        for store in self._stores.values():
            store.close()
        self._stores.clear()

    def _import_stage(self, session: ImportSession, task: ImportTask) -> None:
        """Embed freshly imported items (clap.auto)."""
        from . import index

        items = task.imported_items()
        if not items or self._config_error is not None:
            return
        try:
            bundle, store = self.bundle(audio=True), self.store(session.lib.path)
            todo = [index.Work(i.id, os.fsdecode(i.path), "new") for i in items]
            summary = index.run(
                store,
                bundle,
                todo,
                jobs=1,
                batch_size=self.settings["batch_size"],
                max_windows=self.settings["max_windows"] or None,
            )
        except Exception as exc:  # never break an import over an index
            self._log.warning("not embedded on import: {}", exc)
            return
        for work, error in summary.failed:
            self._log.info("not embedded: {}: {}", displayable_path(work.path), error)
        self._imported.update(w.item_id for w in todo)

    def _on_import_done(self, lib: Library, paths: Any = None) -> None:
        """Refresh the playlists after an import (clap.auto), when the user
        has set up playlists at all: a playlist_dir or prompt playlists."""
        if self._config_error is not None:
            return
        if not (self.settings["playlist_dir"] or self.config["playlists"].get()):
            return
        try:
            self._update_playlists(
                lib,
                auto=self.settings["auto_playlists"],
                clusters=self.settings["clusters"],
            )
        except UserError as exc:  # never fail an import over a playlist
            self._log.warning("playlists not refreshed: {}", exc)

    def _on_import_task_files(self, session: ImportSession, task: ImportTask) -> None:
        """The importer copied/moved/tagged the files after they were embedded:
        record their final stat so the next clap-index sees them unchanged."""
        from .index import file_stat

        stats = []
        for item in task.imported_items():
            if item.id in self._imported:
                self._imported.discard(item.id)
                stats.append((item.id, *file_stat(os.fsdecode(item.path))))
        if stats:
            try:
                self.store(session.lib.path).update_file_stats(stats)
            except Exception as exc:  # the next clap-index re-embeds them
                self._log.warning("could not record imported files: {}", exc)
