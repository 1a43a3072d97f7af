/* neon-perf-launch REPORT PROGRAM [ARGS...]
 *
 * Runs PROGRAM as its own child and writes what wait4(2) says of it to the
 * file REPORT: "status maxrss_kib utime_us stime_us wall_ns\n", or
 * "exec errno\n" when PROGRAM could not be started. Its exit code is 0.
 *
 * Why: a process's peak RSS (ru_maxrss) counts the pages of the process it
 * was forked from until it called exec. Forked from neon-perf, a 1 MiB
 * program reads as neon-perf's 8-9 MiB. Forked from this launcher, whose
 * own footprint is a few pages, it reads as itself. (#21 finding 9)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs("usage: neon-perf-launch REPORT PROGRAM [ARGS...]\n", stderr);
        return 2;
    }
    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        perror("neon-perf-launch: pipe2");
        return 2;
    }
    long long start = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("neon-perf-launch: fork");
        return 2;
    }
    if (pid == 0) {
        close(err_pipe[0]);
        execvp(argv[2], argv + 2);
        int e = errno;
        (void)!write(err_pipe[1], &e, sizeof e);
        _exit(127);
    }
    close(err_pipe[1]);
    int exec_errno = 0;
    ssize_t n;
    do {
        n = read(err_pipe[0], &exec_errno, sizeof exec_errno);
    } while (n < 0 && errno == EINTR);
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("neon-perf-launch: wait4");
            return 2;
        }
    }
    long long wall = now_ns() - start;
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror("neon-perf-launch: report");
        return 2;
    }
    if (n == (ssize_t)sizeof exec_errno) {
        fprintf(f, "exec %d\n", exec_errno);
    } else {
        fprintf(f, "%d %ld %lld %lld %lld\n", status, ru.ru_maxrss,
                (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
                (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec,
                wall);
    }
    return fclose(f) == 0 ? 0 : 2;
}
