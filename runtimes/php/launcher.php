<?php
// ActionLoop launcher for PHP actions (protocol: runtimes/README.md).
//
// Started by the actionloop proxy before any code arrives, so that /init only pays for loading
// the action, not for starting php. Requests come as JSON lines on stdin, answers go as JSON
// lines on fd 3, and stdout/stderr belong to the action.
//
// Everything of ours lives in a namespaced class, so the action's global functions and
// variables (it is included at global scope, like a plain script) cannot collide with it.

namespace ActionLoop;

final class Launcher
{
    const JSON = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION;
    /** Nesting that requests and results may have: far past PHP's default of 512. */
    const DEPTH = 100000;
    const MISSING_ENTRY = 'zipped actions must contain index.php at the root.';

    /** @var resource */
    private static $requests;
    /** @var resource */
    private static $answers;
    /** @var resource */
    private static $stderr;
    /** @var resource keeps /dev/null open as fd 0 */
    private static $stdin;
    private static $acked = false;
    /** Standalone (`-compile`d) launchers ack only when the proxy asked: see ack(). */
    private static $wantsAck = true;
    private static $main = 'main';
    public static $autoload = null;
    public static $entry = '';

    /** Channels, settings, the init line, the environment: everything before the code loads. */
    public static function boot(array $argv): void
    {
        // The logs are the container's stdout and stderr: PHP's own messages must reach stderr,
        // in the usual `PHP Fatal error:  ...` form, whatever php.ini says (display_errors would
        // print them on stdout). The limits match the reference runtime image's php.ini, since
        // an image built on this launcher may ship a stock one.
        error_reporting(E_ALL);
        ini_set('display_errors', '0');
        ini_set('html_errors', '0');
        ini_set('log_errors', '1');
        ini_set('error_log', '');
        ini_set('memory_limit', '-1');
        // An action that closes STDOUT must not end the process at its next echo, as PHP's
        // command line does for a "client" that went away.
        ignore_user_abort(true);

        self::$stderr = fopen('php://stderr', 'w');
        self::$answers = fopen('php://fd/3', 'w');
        if (self::$answers === false) {
            fwrite(self::$stderr, "actionloop: fd 3 (the answer channel) is not open\n");
            exit(1);
        }
        stream_set_blocking(self::$answers, true);
        // A large answer in a few writes, not in PHP's default 8 KiB chunks.
        stream_set_write_buffer(self::$answers, 0);
        stream_set_chunk_size(self::$answers, 1 << 20);

        // The protocol owns stdin: read requests from a private copy and leave /dev/null as
        // fd 0 (closing STDIN frees it; open() takes the lowest free descriptor), so neither
        // the action nor a process it starts can swallow a request.
        self::$requests = fopen('php://stdin', 'r');
        stream_set_blocking(self::$requests, true);
        fclose(STDIN);
        self::$stdin = fopen('/dev/null', 'r');

        // variables_order decides whether PHP fills $_ENV at all; the action may rely on it.
        $_ENV += getenv();

        if (count($argv) > 1) {
            $setup = ['dir' => getcwd(), 'main' => $argv[1], 'file' => $argv[2] ?? null];
            self::$wantsAck = (string) getenv('__OW_WAIT_FOR_ACK') !== '';
        } else {
            $names = (string) getenv('OW_PRELOAD');
            if (trim($names) !== '') {
                self::send(json_encode(self::preload($names), self::JSON | JSON_INVALID_UTF8_SUBSTITUTE));
            }
            $first = fgets(self::$requests);
            if ($first === false) {
                exit(0);
            }
            $setup = json_decode($first, true);
        }
        register_shutdown_function([self::class, 'shutdown']);
        self::$main = ($setup['main'] ?? '') !== '' ? $setup['main'] : 'main';
        foreach ($setup['env'] ?? [] as $key => $value) {
            self::setenv((string) $key, (string) $value);
        }
        if (!@chdir($setup['dir'])) {
            self::fail('start', "cannot enter the action folder {$setup['dir']}");
        }
        $dir = getcwd();
        self::$entry = $dir . '/' . ($setup['file'] ?? 'index.php');
        if (!is_file(self::$entry)) {
            self::fail('locate', self::MISSING_ENTRY);
        }
        if (is_file($dir . '/vendor/autoload.php')) {
            self::$autoload = $dir . '/vendor/autoload.php';
        }
    }

    /**
     * Includes the files the image names in OW_PRELOAD (e.g. an autoloader, or a file that
     * touches the classes actions use) before any code arrives. What they print is not an
     * action's and is dropped; a failure is reported to the proxy, never raised. A fatal error
     * in such a file (a redeclared function) still ends PHP: only Throwables can be caught.
     */
    private static function preload(string $names): array
    {
        $loaded = [];
        $failed = new \stdClass();
        foreach (array_filter(array_map('trim', explode(',', $names))) as $file) {
            if (!is_file($file) || !is_readable($file)) {
                $failed->{$file} = 'no such file';
                continue;
            }
            ob_start();
            try {
                require_once $file;
                $loaded[] = $file;
            } catch (\Throwable $e) {
                $failed->{$file} = get_class($e) . ': ' . $e->getMessage();
            } finally {
                ob_end_clean();
            }
        }
        return ['preloaded' => $loaded, 'failed' => $failed];
    }

    /** The code is loaded: check the function, then tell the proxy. */
    public static function ready(): void
    {
        if (!is_callable(self::$main)) {
            self::fail('start', "the action has no function named '" . self::$main . "'");
        }
        self::flushOutput();
        self::ack('{"ok":true}');
    }

    /**
     * The init's outcome on the answer channel, once. A proxy that did not ask for an ack
     * (no __OW_WAIT_FOR_ACK for an executable) would read it as the first activation's answer.
     */
    private static function ack(string $line): void
    {
        if (!self::$acked && self::$wantsAck) {
            self::send($line);
        }
        self::$acked = true;
    }

    public static function serve(): void
    {
        while (($line = fgets(self::$requests)) !== false) {
            if (trim($line) !== '') {
                self::send(self::activate($line));
            }
        }
    }

    private static function activate(string $line): string
    {
        try {
            $request = json_decode($line, true, self::DEPTH, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            $why = "PHP's JSON decoder could not read the request: {$e->getMessage()}";
            fwrite(self::$stderr, "actionloop: $why\n");
            return self::encode(['__actionloop_error' => $why]);
        }
        if (!is_array($request)) {
            $request = [];
        }
        self::setContext($request, $line);
        $args = $request['value'] ?? [];

        try {
            $result = (self::$main)($args);
        } catch (\Throwable $e) {
            fwrite(self::$stderr, $e . "\n");
            $message = $e->getMessage();
            $result = ['error' => $message !== '' ? $message : get_class($e)];
        }
        $answer = self::encode($result);
        self::flushOutput();
        return $answer;
    }

    /**
     * Arrays are JSON objects at the top, lists included, as PHP runtimes always answered;
     * nested lists stay lists. Invalid UTF-8 is an error, not silently replaced.
     */
    private static function encode($result): string
    {
        if ($result === null) {
            $result = [];
        }
        if ($result instanceof \ArrayObject || $result instanceof \ArrayIterator) {
            $result = $result->getArrayCopy();
        }
        if (is_array($result)) {
            $result = (object) $result;
        }
        try {
            return json_encode($result, self::JSON | JSON_THROW_ON_ERROR, self::DEPTH);
        } catch (\Throwable $e) {
            $why = "The action's result could not be serialized to JSON: " . $e->getMessage();
            fwrite(self::$stderr, "actionloop: $why\n");
            $flags = self::JSON | JSON_INVALID_UTF8_SUBSTITUTE;
            return json_encode(['__actionloop_error' => $why], $flags);
        }
    }

    /** @var array<string, string|false> the last activation's context, with what each was before */
    private static $contextBefore = [];

    /** This activation's context, and nothing left over from the last one. */
    private static function setContext(array $request, string $line): void
    {
        $wanted = [];
        $objects = null;
        foreach ($request as $key => $value) {
            if ($key === 'value') {
                continue;
            }
            if (!is_string($value)) {
                // Decoded as arrays, {} and [] look alike: re-read this key with objects.
                $objects = $objects ?? json_decode($line, false, self::DEPTH);
                $value = json_encode($objects->{$key}, self::JSON, self::DEPTH);
            }
            $wanted['__OW_' . strtoupper((string) $key)] = (string) $value;
        }
        foreach (self::$contextBefore as $name => $before) {
            if (array_key_exists($name, $wanted)) {
                continue;
            }
            if ($before === false) {
                unset($_ENV[$name]);
                putenv($name);
            } else {
                self::setenv($name, $before);
            }
            unset(self::$contextBefore[$name]);
        }
        foreach ($wanted as $name => $text) {
            if (strpbrk($name, "=\0") !== false || strpos($text, "\0") !== false) {
                fwrite(self::$stderr, "actionloop: " . json_encode($name) . " cannot be an environment variable; not set\n");
                continue;
            }
            if (!array_key_exists($name, self::$contextBefore)) {
                self::$contextBefore[$name] = getenv($name);
            }
            self::setenv($name, $text);
        }
    }

    /** Context for getenv() and for $_ENV, which PHP does not keep in sync with each other. */
    private static function setenv(string $key, string $value): void
    {
        $_ENV[$key] = $value;
        try {
            putenv("$key=$value");
        } catch (\ValueError $e) {
            fwrite(self::$stderr, "actionloop: cannot export $key: {$e->getMessage()}\n");
        }
    }

    /** The proxy frames the logs when the answer arrives: all the output must be out first. */
    private static function flushOutput(): void
    {
        while (ob_get_level() > 0 && @ob_end_flush()) {
        }
        flush();
    }

    private static function send(string $line): void
    {
        $data = $line . "\n";
        while ($data !== '') {
            $written = fwrite(self::$answers, $data);
            if ($written === false || $written === 0) {
                fwrite(self::$stderr, "actionloop: cannot write an answer; exiting\n");
                exit(1);
            }
            $data = substr($data, $written);
        }
    }

    /** Refuses /init: the cause on stderr first, then the ack, then exit 1. */
    public static function fail(string $kind, $cause): void
    {
        if ($cause instanceof \Throwable) {
            fwrite(self::$stderr, $cause . "\n");
            $error = sprintf('%s: %s in %s on line %d', get_class($cause), $cause->getMessage(),
                basename($cause->getFile()), $cause->getLine());
        } else {
            fwrite(self::$stderr, $cause . "\n");
            $error = $cause;
        }
        self::flushOutput();
        self::ack(json_encode(['ok' => false, 'kind' => $kind, 'error' => $error],
            self::JSON | JSON_INVALID_UTF8_SUBSTITUTE));
        exit(1);
    }

    /**
     * A fatal error or an exit() while the code loads never reaches ready(): still ack, with
     * the cause, so the proxy can say why. After the ack a fatal error just ends the process,
     * PHP has logged it, and the proxy reports the exit.
     */
    public static function shutdown(): void
    {
        if (self::$acked) {
            return;
        }
        $error = error_get_last();
        $fatal = E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR;
        $why = $error !== null && ($error['type'] & $fatal)
            ? sprintf('PHP Fatal error: %s in %s on line %d', strtok($error['message'], "\n"),
                basename($error['file']), $error['line'])
            : 'the action exited while loading';
        self::ack(json_encode(['ok' => false, 'kind' => 'start', 'error' => $why],
            self::JSON | JSON_INVALID_UTF8_SUBSTITUTE));
    }
}

Launcher::boot($argv);
// At global scope, so the action's top-level variables are globals, as in a plain script.
try {
    if (Launcher::$autoload !== null) {
        require Launcher::$autoload;
    }
    require Launcher::$entry;
} catch (\Throwable $e) {
    Launcher::fail('start', $e);
}
Launcher::ready();
Launcher::serve();
