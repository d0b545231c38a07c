import Agent
import Media
import NIOCore

/// What a call watches on its agent, per the route's `AgentRouteSettings`: how long it stays silent, how long the
/// session lasts, whether its audio overflows the playout cap, and how fast it answers each caller turn.
///
/// Confined to the call's loop, like the call. Per frame it costs a VAD run and a clock read, no allocation.
struct AgentWatch {
    let settings: AgentRouteSettings
    /// The agent's last media or mark (or the answer, before any).
    var lastActivity = NIODeadline.uptimeNanoseconds(0)
    var silenceTimer: Scheduled<Void>?
    var durationTimer: Scheduled<Void>?
    /// The first overflow is logged; the rest only counted.
    var overflowLogged = false
    /// Voice activity on the caller's audio, made when the agent starts (nil if libspeexdsp refused).
    var detector: VoiceActivityDetector?
    var latency: TurnLatency

    init(settings: AgentRouteSettings) {
        self.settings = settings
        latency = TurnLatency(turnEndMilliseconds: settings.turnEndMilliseconds)
    }

    var silenceTimeout: TimeAmount? {
        settings.silenceTimeoutSeconds > 0 ? .seconds(Int64(settings.silenceTimeoutSeconds)) : nil
    }
}

extension Call {
    /// The agent starts: its clocks start too.
    func startWatchingAgent() {
        eventLoop.assertInEventLoop()
        let now = NIODeadline.now()
        agentWatch.lastActivity = now
        agentWatch.detector = try? VoiceActivityDetector(sampleRate: agentSampleRate, frameSamples: agentSampleRate / 50)
        if let timeout = agentWatch.silenceTimeout { armSilenceCheck(at: now + timeout) }
        let limit = agentWatch.settings.maxDurationSeconds
        if limit > 0 {
            agentWatch.durationTimer = eventLoop.scheduleTask(in: .seconds(Int64(limit))) { [self] in sessionLimitReached() }
        }
    }

    func stopWatchingAgent() {
        agentWatch.silenceTimer?.cancel()
        agentWatch.silenceTimer = nil
        agentWatch.durationTimer?.cancel()
        agentWatch.durationTimer = nil
    }

    /// One 20 ms frame of caller audio, for the turn detector.
    func watchCallerAudio(_ samples: UnsafeBufferPointer<Int16>) {
        guard let detector = agentWatch.detector, samples.count == detector.frameSamples else { return }
        agentWatch.latency.callerFrame(isSpeech: detector.isSpeech(samples), at: .now())
    }

    /// The agent sent audio: `accepted` of its `count` samples fit in the playout buffer.
    func agentSentAudio(count: Int, accepted: Int) {
        let now = NIODeadline.now()
        agentWatch.lastActivity = now
        agentWatch.latency.agentAudio(at: now)
        if accepted < count, !agentWatch.overflowLogged {
            agentWatch.overflowLogged = true
            logger.warning("agent audio runs too far ahead; dropping what exceeds the buffer", metadata: [
                "max_buffer_s": "\(agentWatch.settings.maxBufferSeconds)",
            ])
        }
    }

    /// The agent sent something other than audio that shows it is alive (a mark, a clear).
    func agentWasActive() {
        agentWatch.lastActivity = .now()
    }

    /// Keeps how many connection attempts the agent made, before the call lets go of it.
    func noteConnectAttempts() {
        if let remote = agent as? TwilioMediaStreamAgent { record.agentConnectAttempts = remote.connectAttempts }
    }

    /// The record's agent figures: attempts, overflow, peak buffer, time to first audio.
    func recordAgentWatch(_ stats: RTPStatistics) {
        record.agentAudioOverflowMilliseconds = stats.playoutSamplesDropped * 1000 / agentSampleRate
        record.playoutPeakMilliseconds = stats.playoutPeakSamples * 1000 / agentSampleRate
        let turns = agentWatch.latency.milliseconds
        guard !turns.isEmpty else { return }
        record.ttfaMilliseconds = turns
        record.ttfaP50Milliseconds = TurnLatency.percentile(50, of: turns)
        record.ttfaP95Milliseconds = TurnLatency.percentile(95, of: turns)
    }

    private func armSilenceCheck(at deadline: NIODeadline) {
        agentWatch.silenceTimer = eventLoop.scheduleTask(deadline: deadline) { [self] in checkAgentSilence() }
    }

    /// The silence timer fired: the agent failed if it has been silent for the whole timeout with nothing of its
    /// left to play; otherwise the check moves to the new end of the timeout.
    private func checkAgentSilence() {
        agentWatch.silenceTimer = nil
        guard phase == .active, let timeout = agentWatch.silenceTimeout else { return }
        let now = NIODeadline.now()
        if (rtp?.bufferedSamples ?? 0) > 0 { agentWatch.lastActivity = now }
        // A transfer under way holds the call (REFER pending, the human ringing or bridged): the agent is not silent, it waits.
        if transfer?.machine.isUnderWay == true { agentWatch.lastActivity = now }
        let due = agentWatch.lastActivity + timeout
        guard now >= due else { return armSilenceCheck(at: due) }
        let failure = AgentFailure.failedMidCall("agent sent no media or mark for \(agentWatch.settings.silenceTimeoutSeconds) s")
        agent?.stop(reason: failure.reason)
        agentFailed(failure)
    }

    /// The route's maximum session length is reached: the agent gets `stop`, the caller BYE.
    private func sessionLimitReached() {
        agentWatch.durationTimer = nil
        guard phase == .active || phase == .playingFallback else { return }
        let reason = "maximum session duration of \(agentWatch.settings.maxDurationSeconds) s reached"
        agentWatch.silenceTimer?.cancel()
        if let agent {
            noteConnectAttempts()
            agent.stop(reason: reason)
            self.agent = nil
        }
        hangUp(by: "gateway", reason: reason)
    }
}
