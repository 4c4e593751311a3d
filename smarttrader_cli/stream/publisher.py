"""Making webhook events durable fast: dedupe, group commit, spool fallback, re-publishing.

Requests hand their events to `Publisher.submit` and wait. One flusher task takes
everything queued by concurrent requests and makes it durable together: for the local
log one write+fsync (group commit), so throughput does not pay one fsync per request;
for Kafka it hands them to the producer at once and the broker's delivery reports
(acks=all, idempotent) settle each request, without waiting for earlier rounds; the
reports run on the event loop, which polls the producer every millisecond while any are
due (and a few times a second otherwise, for its error callbacks). Until
the topic is known to exist, and while spooling, Kafka goes through blocking rounds
(produce, wait for the acks, spool what failed). Events the broker does not acknowledge
within `stream.producer_timeout_seconds` are fsynced to the spool instead; while the spool is
not empty every new event goes there too (keeping order), and a background thread
re-publishes it oldest first, moving the spool cursor only after the broker acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from smarttrader_cli.stream.backend import OutboundEvent, Producer
from smarttrader_cli.stream.metrics import Metrics
from smarttrader_cli.stream.spool import Spool

log = logging.getLogger("st.webhook.publisher")

MAX_REMEMBERED = 1_000_000  # dedupe memory bound, whatever the window
REPUBLISH_BATCH = 2000
PARALLEL_ROUNDS = 4  # blocking rounds (local appends+fsync, Kafka while spooling) at once
REPORTS_DUE_SECONDS = 0.001  # how often the loop serves delivery reports while any are due
REPORTS_IDLE_SECONDS = 0.25  # and otherwise (error callbacks, reports of blocking rounds)


class NotDurableError(Exception):
    """Events could be neither acknowledged by the broker nor spooled."""


@dataclass
class Submitted:
    """What happened to one request's events."""

    accepted: int
    duplicates: int


class Publisher:
    """The server's durable path: dedupe window, group commit, spool and re-publisher."""

    def __init__(
        self,
        producer: Producer,
        spool: Spool | None,
        metrics: Metrics,
        producer_timeout: float,
        dedupe_window: float,
    ) -> None:
        self.producer = producer
        self.spool = spool
        self.metrics = metrics
        self.timeout = producer_timeout
        self.window = dedupe_window
        self.broker_up: bool | None = None  # unknown until the first publish
        self.last_event_at: float | None = None
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._queue: list[tuple[OutboundEvent, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        # Rounds overlap: a broker takes them concurrently, the local log serializes the
        # appends and lets the fsyncs overlap.
        self._parallel = PARALLEL_ROUNDS
        self._executor = ThreadPoolExecutor(
            max_workers=self._parallel, thread_name_prefix="st-publish"
        )
        self._route = threading.Lock()  # direct-vs-spool decisions against the re-publisher
        self._stop = threading.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # A producer that can send without blocking (Kafka) gets no rounds at all.
        self._producer_send = getattr(producer, "send", None)
        # ...and if its reports run only when polled (librdkafka), the loop polls it.
        self._serve_reports = getattr(producer, "serve_reports", None)
        self._reports_due = 0  # batches sent whose reports have not all arrived
        self._reports_timer: asyncio.TimerHandle | None = None
        self._reports_at = 0.0  # when that timer fires (loop time)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._republisher: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._flusher = self._loop.create_task(self._flush_loop())
        if self._serve_reports is not None:
            self._schedule_reports(REPORTS_IDLE_SECONDS)
        if self.spool is not None:
            self._republisher = threading.Thread(
                target=self._republish_loop, name="st-republish", daemon=True
            )
            self._republisher.start()

    async def close(self) -> None:
        """Finish what is queued, stop the re-publisher, flush the producer."""
        while self._queue or self._inflight:
            self._wake.set()
            await asyncio.sleep(0.01)
        if self._flusher is not None:
            self._flusher.cancel()
        if self._reports_timer is not None:
            self._reports_timer.cancel()
            self._reports_timer = None
        self._stop.set()
        if self._republisher is not None:
            await asyncio.to_thread(self._republisher.join, self.timeout + 5)
        self._executor.shutdown(wait=True)
        await asyncio.to_thread(self.producer.close, self.timeout + 5)
        if self.spool is not None:
            self.spool.close()

    # --- requests -----------------------------------------------------------

    async def submit(self, events: Sequence[OutboundEvent]) -> Submitted:
        """Return once every new event is durable; repeated signatures are not republished."""
        now = time.monotonic()
        self._expire(now)
        waits: list[asyncio.Future[None]] = []
        fresh = 0
        loop = asyncio.get_running_loop()
        for event in events:
            sig = event.key.decode()
            if sig in self._seen:
                continue
            pending = self._inflight.get(sig)
            if pending is None:
                pending = loop.create_future()
                self._inflight[sig] = pending
                self._queue.append((event, pending))
                fresh += 1
            waits.append(pending)
        if fresh:
            self._wake.set()
        self.metrics.inc("st_webhook_events_received_total", len(events))
        if len(waits) == 1:
            await waits[0]
        elif waits:
            await asyncio.gather(*waits)
        duplicates = len(events) - fresh
        self.metrics.inc("st_webhook_events_duplicate_total", duplicates)
        self.last_event_at = time.time()
        return Submitted(accepted=len(events), duplicates=duplicates)

    def _expire(self, now: float) -> None:
        seen = self._seen
        while seen and (
            len(seen) > MAX_REMEMBERED or next(iter(seen.values())) < now - self.window
        ):
            seen.popitem(last=False)

    async def _flush_loop(self) -> None:
        slots = asyncio.Semaphore(self._parallel)
        tasks: set[asyncio.Task[None]] = set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                continue
            if self._can_send():
                batch, self._queue = self._queue, []
                self._send(batch)
                continue
            await slots.acquire()  # while all rounds are busy, requests keep queueing
            batch, self._queue = self._queue, []
            task = asyncio.get_running_loop().create_task(self._flush(batch, slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def _can_send(self) -> bool:
        """Produce without waiting (broker known up, nothing spooled), else a blocking round."""
        return (
            self._producer_send is not None
            and self.spool is not None
            and not self.spool.depth
            and self.broker_up is not False
            and bool(getattr(self.producer, "ready", False))
        )

    def _send(self, batch: list[tuple[OutboundEvent, asyncio.Future[None]]]) -> None:
        """Hand the events to the producer; the delivery reports settle the requests.

        Nothing waits on a round: every group of queued events is produced at once and
        the producer batches and pipelines them, so a request waits for one broker
        acknowledgement, not for the rounds before it.
        """
        loop = asyncio.get_running_loop()
        flags = [False] * len(batch)
        left = [len(batch)]
        guard = threading.Lock()
        finished = [False]

        def finish() -> None:  # on the loop, once: every report arrived, or the guard timer
            if finished[0]:
                return
            finished[0] = True
            timer.cancel()
            self._reports_due -= 1
            with guard:
                result = list(flags)
            if all(result):  # the common case needs no task
                self.metrics.inc("st_webhook_events_published_total", len(batch))
                self.broker_up = True
                self._resolve(batch, result)
            else:
                self._track(loop.create_task(self._delivered(batch, result)))

        def report(index: int, ok: bool) -> None:  # wherever the reports are served
            with guard:
                flags[index] = ok
                left[0] -= 1
                last = left[0] == 0
            if not last:
                return
            if threading.get_ident() == self._loop_thread:
                loop.call_soon(finish)  # not inside the producer's poll
            else:
                loop.call_soon_threadsafe(finish)

        # librdkafka reports every message within message.timeout.ms; the timer only
        # guards against reports lost with a producer that was replaced meanwhile.
        timer = loop.call_later(self.timeout + 5, finish)
        self._reports_due += 1
        if self._serve_reports is not None:
            self._schedule_reports(REPORTS_DUE_SECONDS)
        assert self._producer_send is not None
        try:
            self._producer_send([event for event, _ in batch], report)
        except Exception as exc:  # not queued at all: spool it
            log.warning("could not hand %d events to the producer: %s", len(batch), exc)
            loop.call_soon(finish)

    def _schedule_reports(self, delay: float) -> None:
        """Serve the producer's reports within `delay` (sooner if already planned)."""
        assert self._loop is not None
        at = self._loop.time() + delay
        if self._reports_timer is not None:
            if self._reports_at <= at:
                return
            self._reports_timer.cancel()
        self._reports_at = at
        self._reports_timer = self._loop.call_at(at, self._serve_due_reports)

    def _serve_due_reports(self) -> None:
        self._reports_timer = None
        assert self._serve_reports is not None
        try:
            self._serve_reports(0)
        except Exception:  # a callback's bug must not stop the reports for good
            log.exception("serving the producer's delivery reports failed")
        self._schedule_reports(REPORTS_DUE_SECONDS if self._reports_due else REPORTS_IDLE_SECONDS)

    async def _delivered(
        self, batch: list[tuple[OutboundEvent, asyncio.Future[None]]], acked: list[bool]
    ) -> None:
        """Acknowledged events are done; the rest go to the spool before their requests end."""
        count = sum(acked)
        self.metrics.inc("st_webhook_events_published_total", count)
        durable = acked
        if count == len(batch):
            self.broker_up = True
        else:
            self.broker_up = False
            failed = [event for (event, _), ok in zip(batch, acked, strict=True) if not ok]
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self._executor, self._spool_failed, failed)
                durable = [True] * len(batch)
            except Exception as exc:  # disk full, spool unwritable: the requests get 503
                log.error("could not spool %d events: %s", len(failed), exc)
        self._resolve(batch, durable)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(
        self, batch: list[tuple[OutboundEvent, asyncio.Future[None]]], slots: asyncio.Semaphore
    ) -> None:
        loop = asyncio.get_running_loop()
        events = [event for event, _ in batch]
        try:
            durable = await loop.run_in_executor(self._executor, self._make_durable, events)
        except Exception as exc:  # disk full, spool unwritable: the requests get 503
            log.error("could not make %d events durable: %s", len(events), exc)
            durable = [False] * len(events)
        finally:
            slots.release()
            if self._queue:
                self._wake.set()
        self._resolve(batch, durable)

    def _resolve(
        self, batch: list[tuple[OutboundEvent, asyncio.Future[None]]], durable: list[bool]
    ) -> None:
        now = time.monotonic()
        for (event, future), ok in zip(batch, durable, strict=True):
            sig = event.key.decode()
            self._inflight.pop(sig, None)
            if ok:
                self._seen[sig] = now
                self._seen.move_to_end(sig)
                if not future.done():
                    future.set_result(None)
            elif not future.done():
                future.set_exception(NotDurableError(sig))

    # --- the blocking side (publisher thread) -------------------------------

    def _make_durable(self, events: list[OutboundEvent]) -> list[bool]:
        """Broker ack, else spool fsync; True per event that is durable."""
        with self._route:
            if self.spool is not None and (self.spool.depth or self.broker_up is False):
                self.spool.append(events)
                self.metrics.inc("st_webhook_events_spooled_total", len(events))
                return [True] * len(events)
        # Concurrent rounds may publish at once (Kafka): acks, not order, make 200s safe.
        flags = self.producer.publish(events, self.timeout)
        acked = sum(flags)
        self.metrics.inc("st_webhook_events_published_total", acked)
        if acked == len(events):
            self.broker_up = True
            return flags
        self.broker_up = False
        if self.spool is None:
            return flags
        self._spool_failed([e for e, ok in zip(events, flags, strict=True) if not ok])
        return [True] * len(events)

    def _spool_failed(self, failed: list[OutboundEvent]) -> None:
        assert self.spool is not None
        log.warning("broker did not acknowledge %d events: spooling them", len(failed))
        with self._route:
            self.spool.append(failed)
        self.metrics.inc("st_webhook_events_spooled_total", len(failed))

    def _republish_loop(self) -> None:
        assert self.spool is not None
        spool = self.spool
        while not self._stop.is_set():
            if not spool.depth:
                self._stop.wait(0.2)
                continue
            pending = spool.pending(REPUBLISH_BATCH)
            if not pending:
                self._stop.wait(0.2)
                continue
            events = [OutboundEvent(m.key or b"", m.value, m.received_at_us or 0) for m in pending]
            flags = self.producer.publish(events, self.timeout)
            if all(flags):
                with self._route:
                    spool.ack(pending[-1].offset + 1)
                    self.broker_up = True
                self.metrics.inc("st_webhook_events_published_total", len(events))
                self.metrics.inc("st_webhook_events_republished_total", len(events))
                log.info("re-published %d spooled events (%d left)", len(events), spool.depth)
            else:
                # Acknowledged ones are sent again with the rest: the drain dedupes them.
                self.broker_up = False
                self._stop.wait(1.0)
