package org.jvhost.packaging;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;
import org.jvhost.host.cli.Main;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.codegen.docgen.manpage.ManPageGenerator;

/**
 * Writes the documentation that the package installs, from {@link Main#documentedCommands()}:
 *
 * <pre>
 * OUT/adoc/jvhost.adoc, jvhost-serve.adoc, ...   AsciiDoc, one page per command (picocli-codegen)
 * OUT/man1/jvhost.1.gz, jvhost-serve.1.gz, ...  troff (asciidoctor -b manpage), gzipped as Debian wants
 * OUT/completion/jvhost                         bash completion (picocli's AutoComplete)
 * </pre>
 *
 * Needs the {@code asciidoctor} command (Debian package {@code asciidoctor}); run by the packaging
 * module's build as {@code CommandDocs OUT}.
 */
public final class CommandDocs {
    private static final long ASCIIDOCTOR_TIMEOUT_SECONDS = 120;

    private CommandDocs() {
    }

    public static void main(String[] args) throws IOException, InterruptedException {
        if (args.length != 1) {
            throw new IllegalArgumentException("usage: CommandDocs OUTPUT_DIR");
        }
        Path out = Path.of(args[0]);
        CommandLine commands = Main.documentedCommands();
        Path adoc = out.resolve("adoc");
        Path man = out.resolve("man1");
        Files.createDirectories(adoc);
        Files.createDirectories(man);
        int status = ManPageGenerator.generateManPage(adoc.toFile(), null, new boolean[0], true,
                commands.getCommandSpec());
        if (status != 0) {
            throw new IOException("picocli's ManPageGenerator failed with status " + status + " writing " + adoc);
        }
        toTroff(adoc, man);
        Path completion = out.resolve("completion").resolve("jvhost");
        Files.createDirectories(completion.getParent());
        Files.writeString(completion, AutoComplete.bash("jvhost", commands), StandardCharsets.UTF_8);
    }

    /** Converts every page in {@code adoc} into {@code man/NAME.1.gz}. */
    private static void toTroff(Path adoc, Path man) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("asciidoctor", "--failure-level", "WARN", "-b", "manpage",
                "-D", man.toString()));
        try (Stream<Path> pages = Files.list(adoc)) {
            pages.filter(p -> p.toString().endsWith(".adoc")).sorted().forEach(p -> command.add(p.toString()));
        }
        Process asciidoctor;
        try {
            asciidoctor = new ProcessBuilder(command).inheritIO().start();
        } catch (IOException e) {
            throw new IOException("cannot run asciidoctor, which turns the man pages into troff: install it "
                    + "(apt-get install asciidoctor, or scripts/install-deps.sh): " + e.getMessage(), e);
        }
        if (!asciidoctor.waitFor(ASCIIDOCTOR_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            asciidoctor.destroyForcibly();
            throw new IOException("asciidoctor did not finish within " + ASCIIDOCTOR_TIMEOUT_SECONDS + " s: " + command);
        }
        if (asciidoctor.exitValue() != 0) {
            throw new IOException("asciidoctor failed with status " + asciidoctor.exitValue() + ": " + command);
        }
        try (Stream<Path> pages = Files.list(man)) {
            for (Path page : pages.filter(p -> p.toString().endsWith(".1")).toList()) {
                gzip(page);
            }
        }
    }

    /** {@code page} becomes {@code page.gz} (no timestamp in the header, so builds compare equal). */
    private static void gzip(Path page) throws IOException {
        try (InputStream in = Files.newInputStream(page);
             OutputStream zip = new GZIPOutputStream(Files.newOutputStream(Path.of(page + ".gz")))) {
            in.transferTo(zip);
        }
        Files.delete(page);
    }
}
