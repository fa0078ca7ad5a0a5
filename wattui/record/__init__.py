"""Recording a run: the recorder process and what it is made of.

    options      RecordOptions, MetricOptions, the metric CLI options, record_argv
    recorder     Recorder: launch or attach, sample, write the session, publish events
    state        the recorder's typed read-only state and events (what sinks subscribe to)
    devices      the power sources of a recording, its idle baseline
    signals      waiting for the run, forwarding and logging signals
    intake       the metrics intake (reports, parsed output, metrics file, epoch marks)
    output_drain the run's output to output.log and to the intake
    end_summary  the text printed when a recording ends
    control      stopping a recorder from another process; report_shim, dirwatch: helpers
"""
