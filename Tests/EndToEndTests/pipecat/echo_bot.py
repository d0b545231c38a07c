"""A stock Pipecat Twilio bot, as users write it, with no cloud services: PipecatInteropTests runs it behind the gateway.

FastAPI + uvicorn serve a WebSocket at /ws; each connection is parsed with Pipecat's own `parse_telephony_websocket`
and served by `FastAPIWebsocketTransport` with `TwilioFrameSerializer`, exactly as Pipecat's Twilio examples do.
The pipeline is transport.input() -> EchoAndRecord -> transport.output(), where EchoAndRecord
  - echoes the caller's audio back (the caller hears itself),
  - on the first DTMF `9` sends an 8 s 440 Hz tone as fast as the socket takes it: the stock serializer turns each
    40 ms of it into a Twilio `media` message, pushed as OutputTransportMessageUrgentFrame (Pipecat's raw-message
    path). Pipecat 1.14's own audio path would pace it at real time (FastAPIWebsocketOutputTransport sleeps
    chunk_bytes / sample_rate / 2 = one chunk's duration for 16-bit audio), so nothing would wait in the gateway's
    playout buffer and `clear` would have nothing to flush; a burst puts ~8 s there, as a bot streaming pre-rendered
    speech does,
  - on DTMF `#` interrupts the way Pipecat does on barge-in (`broadcast_interruption`), so the serializer sends `clear`,
  - on DTMF `*` ends the pipeline (EndWorkerFrame -> EndFrame): the serializer hangs up over Twilio's REST API
    (TWILIO_BASE_URL, else api.twilio.com) and the transport closes the socket.
Everything it sees goes, one JSON object per line, to the event file given on the command line (flushed per line)
and to stdout, so the test waits on events instead of sleeping.

Usage: python echo_bot.py --port PORT --events FILE
Credentials come from the environment, as in Pipecat's runner: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, and the
optional TWILIO_BASE_URL (a Twilio-API-compatible REST root for the hang-up; default api.twilio.com).
"""

import argparse
import asyncio
import json
import math
import os
import signal
import struct
import sys
import time

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger

import pipecat
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

try:  # Pipecat >= 1.3 names; older releases only have PipelineTask / PipelineRunner.
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.workers.runner import WorkerRunner
except ImportError:  # pragma: no cover - older pipecat
    from pipecat.pipeline.runner import PipelineRunner as WorkerRunner
    from pipecat.pipeline.task import PipelineParams, PipelineTask as PipelineWorker

try:  # ends the pipeline the way a bot's own code does (Pipecat >= 1.4; before: EndTaskFrame pushed upstream)
    from pipecat.frames.frames import EndWorkerFrame

    END_FRAME, END_DIRECTION = EndWorkerFrame, FrameDirection.DOWNSTREAM
except ImportError:  # pragma: no cover - older pipecat
    from pipecat.frames.frames import EndTaskFrame

    END_FRAME, END_DIRECTION = EndTaskFrame, FrameDirection.UPSTREAM

try:
    from pipecat.runner.utils import parse_telephony_websocket
except ImportError:  # pragma: no cover - releases before the runner module
    parse_telephony_websocket = None

SAMPLE_RATE = 8000
TONE_SECONDS = 8.0
TONE_HZ = 440.0
TONE_CHUNK = 320  # 40 ms at 8 kHz, the chunk size Pipecat's WebSocket output uses


class Events:
    """JSON lines to the event file and stdout, flushed per line."""

    def __init__(self, path: str):
        self._file = open(path, "a", buffering=1)

    def emit(self, event: str, **fields):
        line = json.dumps({"event": event, "t": time.time(), **fields})
        self._file.write(line + "\n")
        self._file.flush()
        print(line, flush=True)


class ObservedTwilioFrameSerializer(TwilioFrameSerializer):
    """Pipecat's TwilioFrameSerializer, unchanged, plus a record of the raw messages it gets, the clears it sends and
    its REST hang-up (the stock serializer drops `connected`/`start`/`stop`, which the test wants to see)."""

    def __init__(self, *args, events: Events, **kwargs):
        super().__init__(*args, **kwargs)
        self._events = events
        self._seen: dict[str, int] = {}

    async def deserialize(self, data):
        try:
            message = json.loads(data)
            name = message.get("event", "?")
        except (ValueError, AttributeError):
            name = "<not json>"
            message = {}
        self._seen[name] = self._seen.get(name, 0) + 1
        if name == "stop":
            self._events.emit("ws_stop", stop=message.get("stop"), seen=dict(self._seen))
        elif name not in ("media", "dtmf") and self._seen[name] == 1:
            self._events.emit("ws_message", name=name)
        return await super().deserialize(data)

    async def _hang_up_call(self):
        self._events.emit("rest_hang_up", call_sid=self._call_sid)
        await super()._hang_up_call()
        self._events.emit("rest_hang_up_done", call_sid=self._call_sid)

    async def serialize(self, frame: Frame):
        result = await super().serialize(frame)
        if isinstance(frame, InterruptionFrame) and result:
            self._events.emit("clear_sent", message=json.loads(result))
        return result


def tone_frames() -> list[OutputAudioRawFrame]:
    total = int(TONE_SECONDS * SAMPLE_RATE)
    samples = [int(12000 * math.sin(2 * math.pi * TONE_HZ * i / SAMPLE_RATE)) for i in range(total)]
    return [
        OutputAudioRawFrame(
            audio=struct.pack(f"<{len(chunk)}h", *chunk), sample_rate=SAMPLE_RATE, num_channels=1
        )
        for chunk in (samples[i : i + TONE_CHUNK] for i in range(0, total, TONE_CHUNK))
    ]


class EchoAndRecord(FrameProcessor):
    def __init__(self, events: Events, serializer: TwilioFrameSerializer):
        super().__init__()
        self._events = events
        self._serializer = serializer
        self.audio_frames = 0
        self.audio_bytes = 0
        self.digits: list[str] = []
        self._toned = False

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.audio_frames += 1
            self.audio_bytes += len(frame.audio)
            if self.audio_frames == 1 or self.audio_frames % 50 == 0:
                self._events.emit("audio", count=self.audio_frames, sample_rate=frame.sample_rate)
            await self.push_frame(frame, direction)
            # The echo: what the caller said goes back out as the bot's audio.
            await self.push_frame(
                OutputAudioRawFrame(audio=frame.audio, sample_rate=frame.sample_rate, num_channels=frame.num_channels)
            )
        elif isinstance(frame, InputDTMFFrame):
            digit = frame.button.value
            self.digits.append(digit)
            self._events.emit("dtmf", digit=digit, audio_frames=self.audio_frames)
            await self.push_frame(frame, direction)
            if digit == "9" and not self._toned:
                self._toned = True
                frames = tone_frames()
                self._events.emit("tone_start", frames=len(frames), seconds=TONE_SECONDS)
                for tone in frames:
                    media = await self._serializer.serialize(tone)
                    await self.push_frame(OutputTransportMessageUrgentFrame(message=json.loads(media)))
                self._events.emit("tone_sent", frames=len(frames))
            elif digit == "#":
                self._events.emit("interrupt")
                await self.broadcast_interruption()
            elif digit == "*":
                self._events.emit("end")
                await self.push_frame(END_FRAME(), END_DIRECTION)
        else:
            await self.push_frame(frame, direction)


def make_app(events: Events) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket):
        await websocket.accept()
        events.emit("ws_accepted", path=websocket.url.path)
        if parse_telephony_websocket is None:
            raise RuntimeError("this pipecat has no pipecat.runner.utils.parse_telephony_websocket")
        transport_type, call_data = await parse_telephony_websocket(websocket)
        events.emit(
            "start",
            transport_type=transport_type,
            stream_id=call_data.get("stream_id"),
            call_id=call_data.get("call_id"),
            from_number=call_data.get("from"),
            to_number=call_data.get("to"),
            body=call_data.get("body", {}),
        )

        serializer = ObservedTwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            account_sid=os.getenv("TWILIO_ACCOUNT_SID", ""),
            auth_token=os.getenv("TWILIO_AUTH_TOKEN", ""),
            base_url=os.getenv("TWILIO_BASE_URL") or None,
            events=events,
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=serializer,
            ),
        )
        echo = EchoAndRecord(events, serializer)
        worker = PipelineWorker(
            Pipeline([transport.input(), echo, transport.output()]),
            params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE),
        )

        @transport.event_handler("on_client_connected")
        async def on_client_connected(transport, client):
            events.emit("client_connected")

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport, client):
            events.emit("disconnected", audio_frames=echo.audio_frames, digits=echo.digits)
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False)
        if hasattr(runner, "add_workers"):
            await runner.add_workers(worker)
            await runner.run()
        else:  # pragma: no cover - older pipecat
            await runner.run(worker)
        events.emit("pipeline_done", audio_frames=echo.audio_frames, digits=echo.digits)

    return app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", required=True)
    args = parser.parse_args()

    # A parent may hand down its signal mask: children of `swift test` start with nearly every signal blocked
    # (SIGTERM, SIGINT, SIGCHLD included), so uvicorn would never see the SIGTERM that stops it. Start clean.
    inherited_mask = sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_SETMASK, []))

    logger.remove()
    logger.add(sys.stderr, level=os.getenv("BOT_LOG_LEVEL", "DEBUG"))
    events = Events(args.events)

    config = uvicorn.Config(make_app(events), host="127.0.0.1", port=args.port, log_level="info")
    server = uvicorn.Server(config)

    async def serve():
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task  # startup failed: raise its error
                return
            await asyncio.sleep(0.02)
        events.emit(
            "ready", port=args.port, pipecat=getattr(pipecat, "__version__", "?"), inherited_sigmask=inherited_mask
        )
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
