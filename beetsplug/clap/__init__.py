"""Search a beets library by description, negations included (CLAP)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, ClassVar

# onnxruntime 1.29 and later record usage events under the user's cache
# folder (Microsoft/DeveloperTools) and send them to Microsoft's collector
# unless this is set before they are imported: the plugin works offline and
# tells no one about a library. Set here, before any command can import
# onnxruntime, so worker processes inherit it; a user's own setting stands.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from beets import ui
from beets.dbcore.query import FieldQuery
from beets.plugins import BeetsPlugin
from beets.ui import UserError
from beets.util import displayable_path

from .cli import subcommands
from .guards import guarded
from .items import item_path
from .named_query import ClapAlbumQuery, ClapQuery
from .progress import ProgressBar
from .resources import Resources
from .results import SCORE_FIELD, ScoreType, counted, ranked_lines
from .results import nothing_found as _nothing_found
from .results import track_name as _track_name
from .results import tracks_not_found as _tracks_not_found
from .settings import (
    DEFAULTS,
    SettingsError,
    cpu_count,
    may_want_auto,
    validated,
    within_cpus,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from beets.importer import ImportSession, ImportTask
    from beets.library import Album, Item, Library

    from .model import Bundle
    from .search import Query
    from .store import Store


class ClapPlugin(BeetsPlugin):
    """The clap commands (their parsers in cli.py), the `clap:` query, the
    `$clap_score` field, and embedding on import (`auto`)."""

    item_queries: ClassVar[dict[str, type[FieldQuery]]] = {"clap": ClapQuery}
    album_queries: ClassVar[dict[str, type[FieldQuery]]] = {"clap": ClapAlbumQuery}
    # The computed field's type: how beets formats it in templates.
    item_types: ClassVar[dict[str, ScoreType]] = {SCORE_FIELD: ScoreType()}
    album_types: ClassVar[dict[str, ScoreType]] = {SCORE_FIELD: ScoreType()}

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
            # Nothing is logged now: the command's UserError is the one line
            # a user sees, and commands of other plugins are not the place.
            self._config_error = UserError(str(exc))
            if may_want_auto(self.config):
                self.register_listener("import_begin", self._on_import_begin)
        self._resources = Resources(self.settings, self._log)
        self._scores: dict[int, float] = {}
        self._album_scores: dict[int, float] = {}
        self._removed: set[int] = set()
        self._imported: set[int] = set()  # embedded by the import stage
        self.template_fields[SCORE_FIELD] = self._item_score
        self.album_template_fields[SCORE_FIELD] = self._album_score
        self.register_listener("item_removed", self._on_item_removed)
        self.register_listener("cli_exit", self._on_cli_exit)
        self.register_listener("import_task_files", self._on_import_task_files)
        if self.settings.get("auto"):
            self.import_stages = [self._import_stage]
            self.register_listener("import", self._on_import_done)

    # Configuration ----------------------------------------------------------

    def _check_config(self) -> None:
        if self._config_error is not None:
            raise self._config_error

    def _on_import_begin(self, session: ImportSession) -> None:
        """Embedding on import (`auto`) happens without a clap command to
        report the settings' error, so the import says it, once."""
        self._log.warning("{}: nothing is embedded on import", self._config_error)

    # Shared resources, opened once per command ------------------------------

    def bundle(self, audio: bool = False) -> Bundle:
        """The configured model bundle (resources.py); `audio=True` for indexing."""
        self._check_config()
        return self._resources.bundle(audio)

    def store(self, db_path: Any = None) -> Store:
        """The plugin's own connection to library.db (the configured one)."""
        self._check_config()
        from beets import config

        path = db_path if db_path is not None else config["library"].as_filename()
        return self._resources.store(os.fsdecode(path))

    def _weight(self) -> float:
        from .search import resolve_negation_weight

        return resolve_negation_weight(self.settings["negation_weight"], self.bundle())

    def _embed(self, text: str, example: str | None = None) -> Any:
        """The description parsed and embedded with the configured weights;
        `example` as search.description_problem takes it (clap-web's)."""
        from .search import COMMAND_EXAMPLE, embed_query

        return embed_query(
            self.bundle(),
            text,
            self._weight(),
            self.settings["tag_weight"],
            self.settings["affirmed_tag_weight"],
            self.settings["speech_weight"],
            example or COMMAND_EXAMPLE,
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
        handlers = {
            "clap-index": self._cmd_index,
            "clap": self._cmd_search,
            "clap-similar": self._cmd_similar,
            "clap-path": self._cmd_path,
            "clap-playlists": self._cmd_playlists,
            "clap-web": self._cmd_web,
            "clap-map": self._cmd_map,
        }
        commands = subcommands()
        for cmd in commands:
            cmd.func = guarded(self._check_config, handlers[cmd.name])
        return commands

    def _opener(self, lib: Library) -> Callable[[], tuple[Bundle, Store]]:
        """The model bundle and the library's store, opened when called."""
        return lambda: (self.bundle(), self.store(lib.path))

    def _cmd_web(self, lib: Library, opts: Any, args: list[str]) -> None:
        from .views import serve_page

        def announce(line: str) -> None:
            ui.print_(line)
            sys.stdout.flush()  # seen at once, even through a pipe

        serve_page(
            lib,
            args,
            opts.host,
            opts.port,
            self._opener(lib),
            self._embed,
            self.settings["limit"],
            self._log,
            announce,
        )

    def _cmd_map(self, lib: Library, opts: Any, args: list[str]) -> None:
        from .views import write_map

        tracks, regions = write_map(
            lib,
            args,
            opts.output,
            opts.color,
            opts.layout,
            self._opener(lib),
            self._searching,
        )
        drawn = f"{counted(tracks, 'track')}, {counted(regions, 'region')}"
        ui.print_(f"clap-map: wrote {opts.output} ({drawn})")

    def _limit(self, opts: Any) -> int:
        self._check_config()
        number = self.settings["limit"] if opts.number is None else opts.number
        if number < 1:
            raise UserError("-n/--number must be at least 1")
        return number

    def _cmd_index(self, lib: Library, opts: Any, args: list[str]) -> None:
        import signal

        from . import index

        try:
            self._index(lib, opts, args)
        except KeyboardInterrupt:
            # beets' main ends quietly with status 0 on Ctrl-C; a stopped
            # run says so and fails, as on SIGTERM (batches written are kept,
            # the one in flight was rolled back on the way here).
            raise index.stopped(signal.SIGINT, self._log) from None

    def _index(self, lib: Library, opts: Any, args: list[str]) -> None:
        """`beet clap-index [QUERY]`: plan, then embed (or list, --pretend)."""
        from . import index

        self._check_config()
        jobs = self.settings["jobs"] if opts.jobs is None else opts.jobs
        if jobs < 0:
            raise UserError("-j/--jobs must be 0 (all cores) or more")
        # Each worker holds its own audio model: more than the CPUs only
        # costs memory and process starts.
        label = "clap.jobs" if opts.jobs is None else "-j/--jobs"
        jobs, note = within_cpus(label, jobs or cpu_count())
        if note is not None:
            self._log.info("{}", note)
        from .items import db_paths
        from .search import item_columns

        # A dry run embeds nothing: it needs the bundle's identity and
        # window cap, not its audio model.
        bundle = self.bundle(audio=not opts.pretend)
        store = self.store(lib.path)
        # Ids and paths only: an Item per track costs far more (docs/benchmarks.md).
        rows = item_columns(lib, args, ("id", "path"))
        paths = db_paths(lib, (path for _, path in rows))
        items = [
            (item_id, path) for (item_id, _), path in zip(rows, paths, strict=True)
        ]
        if args and not items:
            self._log.info("{}", _nothing_found(args, (), "tracks"))
            return
        windows = index.window_cap(bundle, self.settings["max_windows"])
        plan = index.plan(
            items, store.states(), bundle.identity, windows, force=opts.force
        )
        if opts.pretend:
            failing = [w for w in plan.todo if w.problem is not None]
            for work in plan.todo:
                what = (
                    f"would fail ({work.problem})"
                    if work.problem is not None
                    else f"would embed ({work.reason})"
                )
                ui.print_(f"{what}: {displayable_path(work.path)}")
            ui.print_(
                f"clap-index: would embed {len(plan.todo) - len(failing)}, "
                f"unchanged {plan.unchanged}"
                + (f", would fail {len(failing)}" if failing else "")
            )
            return
        self._log.debug(
            "embedding {} with {}",
            counted(len(plan.todo), "track"),
            counted(jobs, "job"),
        )
        try:
            # The bar's line is ended before any message (a warning, the
            # stop line of Ctrl-C or SIGTERM, an error) and when the run ends.
            with ProgressBar("clap-index", self._log) as bar:
                summary = self._searching(
                    lambda: index.run(
                        store,
                        bundle,
                        plan.todo,
                        jobs=jobs,
                        batch_size=self.settings["batch_size"],
                        max_windows=windows,
                        progress=bar,
                        log=self._log,
                    )
                )
        except index.IndexingError as exc:
            raise UserError(str(exc)) from exc
        if summary.dropped:
            self._log.info(
                "dropped {} of a previous model bundle",
                counted(summary.dropped, "vector"),
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
        notes: Mapping[int, str] | None = None,
    ) -> bool:
        """Print (id, score) results with the user's format, best first, each
        followed by its note where `notes` has one; whether any was printed."""
        printed = False
        for line in ranked_lines(ranked, get, show_score, notes):
            ui.print_(line)
            printed = True
        return printed

    def _show_results(
        self,
        lib: Library,
        opts: Any,
        query: Sequence[str],
        rank_items: Callable[[set[int] | None], list[tuple[int, float]]],
        rank_albums: Callable[[set[int] | None], list[tuple[int, float]]],
        seeds: Collection[int] = (),
        text: str | None = None,
        explained: Query | None = None,
    ) -> None:
        """Rank the albums (--album) or tracks that `query` matches, keep
        their scores for `$clap_score`, print them, and say why when nothing
        is printed; `seeds`: the tracks the ranking leaves out; `text` the
        description, for the hint when `query` may be the rest of it typed
        without quotes; `explained` the ranking's query when --explain
        spells each track's score out under it (search.item_terms)."""
        from .search import item_terms, matching_ids

        if getattr(opts, "album", False):
            album_ids = matching_ids(lib, query, albums=True)
            ranked = self._searching(lambda: rank_albums(album_ids))
            self._album_scores.update(ranked)
            if self._print_ranked(ranked, lib.get_album, opts.score):
                return
            # The albums holding a seed are left out, as the seeds are.
            seed_albums = set(self.store(lib.path).albums_of(seeds).values())
            pool = self.store(lib.path).album_ids() if album_ids is None else album_ids
            if seed_albums and pool and set(pool) <= seed_albums:
                matching = f" matching {' '.join(query)}" if query else ""
                self._log.info(
                    "every album{} holds a seed: nothing is left to rank", matching
                )
                return
            self._log.info("{}", _nothing_found(query, album_ids, "albums", text))
            return
        candidates = self._candidates(lib, query)
        ranked = self._searching(lambda: rank_items(candidates))
        self._scores.update(ranked)
        notes = None
        if explained is not None:
            notes = item_terms(self.store(lib.path), explained, [i for i, _ in ranked])
        if self._print_ranked(ranked, lib.get_item, opts.score, notes):
            return
        rest = None if candidates is None else set(candidates) - set(seeds)
        if candidates and not rest:
            self._log.info(
                "every track matching {} is a seed: nothing is left to rank",
                " ".join(query),
            )
            return
        # Nothing printed of tracks that match: none of them has a vector.
        self._log.info(
            "{}", _tracks_not_found(lib, self.store(lib.path), query, rest, text)
        )

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
        self._show_results(
            lib,
            opts,
            query,
            lambda ids: search.rank_items(store, bundle, tq, limit, ids),
            lambda ids: search.rank_albums(store, bundle, tq, limit, ids),
            text=text,
            explained=tq if opts.explain else None,
        )

    def _cmd_composed(self, lib: Library, opts: Any, args: list[str]) -> None:
        """`beet clap [TEXT] --like QUERY [--unlike QUERY] [QUERY]`."""
        from .compose import description_and_query
        from .search import query_fields

        text, query = description_and_query(args, query_fields(lib))
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

        composed = self._searching(
            lambda: compose.compose_query(
                store,
                bundle,
                None if text is None else lambda: self._embed(text),
                likes,
                unlikes,
                lambda q: search.matching_ids(lib, q),
                self.settings["like_weight"],
                self.settings["unlike_weight"],
                lambda i: _track_name(lib, i),
            )
        )
        if opts.explain:
            ui.print_(composed.explain(lambda i: _track_name(lib, i)))
        self._show_results(
            lib,
            opts,
            query,
            lambda ids: compose.rank_items(store, bundle, composed, limit, ids),
            lambda ids: compose.rank_albums(store, bundle, composed, limit, ids),
            seeds=composed.seed_ids,
            text=text,
            explained=composed if opts.explain else None,
        )

    def _cmd_similar(self, lib: Library, opts: Any, args: list[str]) -> None:
        from . import compose, search

        if not args:
            raise UserError(
                "give a query for the tracks to compare with: beet clap-similar QUERY"
            )
        if opts.without is not None:
            description = compose.without_description(opts.without)
            return self._run_composed(lib, opts, description, [args], [])
        limit = self._limit(opts)
        bundle, store = self.bundle(), self.store(lib.path)
        seeds = [row[0] for row in search.item_columns(lib, args, ("id",))]
        if not seeds:
            raise UserError(
                f"no tracks match {' '.join(args)}: nothing to compare with"
            )
        ranked = self._searching(
            lambda: search.rank_similar(
                store, bundle, seeds, limit, name_of=lambda i: _track_name(lib, i)
            )
        )
        if opts.explain:
            # The ranking just used, explained: asking why never changes it.
            indexed = store.vectors(seeds)[0].tolist()
            ui.print_(
                compose.explain_similar(
                    " ".join(args),
                    len(seeds),
                    indexed,
                    lambda i: _track_name(lib, i),
                    compose.failed_count(store, seeds, indexed),
                )
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
        if candidates is not None and len(steps) == 2:
            # The query leaves no track to pass through because it matches
            # none, or none indexed: said as the searches say it, and, as
            # they do, nothing printed and no playlist written.
            rest = candidates - set(ends)
            if not candidates or (rest and not len(store.vectors(rest)[0])):
                self._log.info("{}", _tracks_not_found(lib, store, query, rest))
                return
        ranked = [(step.item_id, step.fit) for step in steps]
        self._scores.update(ranked)
        if len(steps) < length:
            between = len(steps) - 2
            self._log.info(
                "{} between FROM and TO{}: the path is shorter",
                "no track lies"
                if not between
                else f"only {counted(between, 'track')} "
                + ("lies" if between == 1 else "lie"),
                f" among those matching {' '.join(query)}" if query else "",
            )
        # The playlist first: it is what lasts, and printing can end the
        # command early (`| head` closes the pipe, and beets stops quietly).
        if opts.m3u:
            self._write_path(lib, opts.m3u, [step.item_id for step in steps])
        self._print_ranked(ranked, lib.get_item, opts.score)

    def _write_path(self, lib: Library, filename: str, item_ids: list[int]) -> None:
        from .library_playlists import write_items
        from .m3u import PlaylistError

        try:
            target, count = write_items(lib, filename, item_ids, self.settings)
        except PlaylistError as exc:
            raise UserError(str(exc)) from exc
        self._log.info(
            "wrote {} ({})", displayable_path(target), counted(count, "track")
        )

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
                f"{verb} {playlist.name}: {displayable_path(path)} "
                f"({counted(count, 'track')})"
            )
        for path in update.removed:
            ui.print_(f"removed {displayable_path(path)}")
        for warning in update.warnings:
            self._log.warning("{}", warning)

    def _update_playlists(
        self, lib: Library, auto: bool, clusters: int, pretend: bool = False
    ) -> Any:
        """Write the prompt playlists of clap.playlists and, with `auto`,
        the library's cluster playlists (library_playlists.update)."""
        from . import library_playlists
        from .m3u import PlaylistError

        bundle, store = self.bundle(), self.store(lib.path)
        try:
            return self._searching(
                lambda: library_playlists.update(
                    lib,
                    store,
                    bundle,
                    self._embed,
                    self.settings["playlists"],
                    self.settings,
                    auto=auto,
                    clusters=clusters,
                    pretend=pretend,
                )
            )
        except PlaylistError as exc:  # the config, or a folder or file
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
        """Albums of the items a `clap:TEXT` query matches; each album's
        $clap_score is the mean of its indexed tracks' scores, as `beet
        clap -a` ranks albums."""
        from . import search

        bundle, store = self.bundle(), self.store()

        def run() -> tuple[set[int], dict[int, float]]:
            tq = self._embed(text)
            ranked = search.rank_items(store, bundle, tq, self.settings["query_top_k"])
            albums = set(store.albums_of(i for i, _ in ranked).values())
            return albums, search.album_scores(store, tq, albums)

        albums, scores = self._searching(run)
        self._album_scores.update(scores)
        return albums

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
        self._resources.close()

    def _import_stage(self, session: ImportSession, task: ImportTask) -> None:
        """Embed freshly imported items (clap.auto)."""
        from . import index

        items = task.imported_items()
        if not items or self._config_error is not None:
            return
        try:
            bundle, store = self.bundle(audio=True), self.store(session.lib.path)
            other = store.other_bundle(bundle.identity)
            if other is not None:
                # Embedding these would drop every vector of the other model:
                # that is clap-index's to do, when the user asks for it.
                self._log.warning(
                    "not embedded on import: the clap index holds vectors of "
                    "another model bundle ({}); run `beet clap-index` to embed "
                    "the library with the current one",
                    other,
                )
                return
            todo = [index.Work(i.id, item_path(session.lib, i), "new") for i in items]
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
        has said where they live (a playlist_dir): without one, clap-playlists
        writes to the current folder, which for an import is wherever the
        user happened to be."""
        if self._config_error is not None:
            return
        if not self.settings["playlist_dir"]:
            if self.settings["playlists"]:
                self._log.info(
                    "playlists not refreshed: set clap.playlist_dir to have them "
                    "refreshed after each import"
                )
            return
        try:
            update = self._update_playlists(
                lib,
                auto=self.settings["auto_playlists"],
                clusters=self.settings["clusters"],
            )
        except Exception as exc:  # never fail an import over a playlist
            self._log.warning("playlists not refreshed: {}", exc)
            return
        for warning in update.warnings:
            self._log.warning("{}", warning)

    def _on_import_task_files(self, session: ImportSession, task: ImportTask) -> None:
        """The importer copied/moved/tagged the files after they were embedded:
        record their final stat so the next clap-index sees them unchanged.
        Imported items the import did not embed are new items: rows under
        their ids belong to items removed while the plugin was not loaded
        (beets reuses the highest id), and are dropped before a search
        takes them for the new tracks' sound."""
        from .index import file_stat

        if self._config_error is not None:
            return
        stats, stale = [], []
        for item in task.imported_items():
            if item.id in self._imported:
                self._imported.discard(item.id)
                stats.append((item.id, *file_stat(item_path(session.lib, item))))
            else:
                stale.append(item.id)
        try:
            store = self.store(session.lib.path)
            if stats:
                store.update_file_stats(stats)
            store.delete_items(stale)
        except Exception as exc:  # the next clap-index re-embeds them
            self._log.warning("could not record imported files: {}", exc)
