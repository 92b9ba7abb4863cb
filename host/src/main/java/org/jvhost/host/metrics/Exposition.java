package org.jvhost.host.metrics;

import io.prometheus.metrics.expositionformats.ExpositionFormatWriter;
import io.prometheus.metrics.expositionformats.ExpositionFormats;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/** What {@code GET /metrics} answers, in the format the client's {@code Accept} header asks for. */
@FunctionalInterface
public interface Exposition {

    /** A response body and its {@code Content-Type}. */
    record Body(String contentType, byte[] bytes) {
        /** Plain text in the Prometheus text format (tests). */
        public static Body text(String text) {
            return new Body(MetricsServer.CONTENT_TYPE, text.getBytes(StandardCharsets.UTF_8));
        }
    }

    /**
     * Renders the metrics for a client that sent {@code accept} (null when it sent no {@code Accept}).
     * May throw anything: the server answers 500 and goes on.
     */
    Body render(String accept) throws IOException;

    /**
     * Scrapes {@code registry} at each request and writes it with the Prometheus client's writers:
     * OpenMetrics text when the scraper asks for {@code application/openmetrics-text}, else the
     * Prometheus text format 0.0.4 (the protobuf format is not built in).
     */
    static Exposition of(PrometheusRegistry registry) {
        ExpositionFormats formats = ExpositionFormats.init();
        return accept -> {
            ExpositionFormatWriter writer = formats.findWriter(accept);
            if (!writer.isAvailable()) {
                writer = formats.getPrometheusTextFormatWriter();
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream(16 * 1024);
            writer.write(out, registry.scrape());
            return new Body(writer.getContentType(), out.toByteArray());
        };
    }
}
