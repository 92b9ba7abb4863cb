package org.jvhost.engine.instrument;

import java.util.ArrayList;
import java.util.List;

/** A {@link RingChecks.Reporter} that keeps what strict mode reported: "rule: detail" lines, and the extra kicks. */
final class RecordingReporter implements RingChecks.Reporter {
    final List<String> reports = new ArrayList<>();
    long extraKicks;

    @Override
    public void report(SpecRule rule, String detail) {
        reports.add(rule.id() + ": " + detail);
    }

    @Override
    public void extraKicks(long kicks) {
        extraKicks += kicks;
    }
}
