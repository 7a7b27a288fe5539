#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"

Test(config, defaults_are_the_documented_limits)
{
	struct node_config c;
	config_defaults(&c);
	cr_assert_str_eq(c.listen, "127.0.0.1:7400");
	cr_assert_str_eq(c.data_dir, "./ringkv-data");
	cr_assert_eq(c.max_frame, 16u << 20);
	cr_assert_eq(c.max_key, 1024);
	cr_assert_eq(c.max_value, 1u << 20);
	cr_assert_eq(c.max_clients, 10000);
	cr_assert_eq(c.frame_timeout_ms, 10000);
	cr_assert_eq(c.idle_timeout_ms, 300000);
	cr_assert_eq(c.max_output_bytes, 64u << 20);
	cr_assert_eq(c.fsync, RK_FSYNC_INTERVAL);
	char err[256];
	cr_assert_eq(config_validate(&c, err, sizeof(err)), 0);
}

Test(config, sizes_and_durations)
{
	uint64_t v;
	cr_assert_eq(config_parse_size("16MiB", &v), 0);
	cr_assert_eq(v, 16u << 20);
	cr_assert_eq(config_parse_size("4k", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(config_parse_size("100", &v), 0);
	cr_assert_eq(v, 100);
	cr_assert_neq(config_parse_size("-1", &v), 0);
	cr_assert_neq(config_parse_size("1 parsec", &v), 0);
	cr_assert_neq(config_parse_size("99999999999999999999", &v), 0);
	cr_assert_neq(config_parse_size("", &v), 0);
	cr_assert_eq(config_parse_duration_ms("10s", &v), 0);
	cr_assert_eq(v, 10000);
	cr_assert_eq(config_parse_duration_ms("3h", &v), 0);
	cr_assert_eq(v, 3 * 3600000);
	cr_assert_eq(config_parse_duration_ms("250", &v), 0);
	cr_assert_eq(v, 250);
}

Test(config, set_checks_names_and_ranges)
{
	struct node_config c;
	config_defaults(&c);
	char err[256];
	cr_assert_eq(config_set(&c, "limits.max_value", "4MiB", err, sizeof(err)), 0);
	cr_assert_eq(c.max_value, 4u << 20);
	cr_assert_eq(config_set(&c, "max_key", "100", err, sizeof(err)), 0);
	cr_assert_eq(c.max_key, 100);
	cr_assert_eq(config_set(&c, "limits.max_key", "70000", err, sizeof(err)),
		     RK_EINVALID);
	cr_assert(strstr(err, "outside"), "%s", err);
	cr_assert_eq(config_set(&c, "no.such", "1", err, sizeof(err)), RK_EINVALID);
	cr_assert_eq(config_set(&c, "fsync", "sometimes", err, sizeof(err)),
		     RK_EINVALID);
	cr_assert_eq(config_set(&c, "fsync", "ALWAYS", err, sizeof(err)), 0);
	cr_assert_eq(c.fsync, RK_FSYNC_ALWAYS);
	/* A frame must be able to carry the largest request. */
	cr_assert_eq(config_set(&c, "max_frame", "1KiB", err, sizeof(err)), 0);
	cr_assert_eq(config_validate(&c, err, sizeof(err)), RK_EINVALID);
}

Test(config, file_errors_name_the_line)
{
	char path[] = "/tmp/rkv-conf-XXXXXX";
	int fd = mkstemp(path);
	const char *text = "[node]\nlisten = 127.0.0.2:9000\n\n[limits]\n"
			   "max_clients = 5\nmax_value = lots\n";
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct node_config c;
	config_defaults(&c);
	char err[256];
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), RK_EINVALID);
	cr_assert(strstr(err, ":6:") && strstr(err, "max_value"), "%s", err);
	FILE *f = fopen(path, "w");
	fputs("[node]\nlisten = 127.0.0.2:9000\n[storage]\nfsync = never\n", f);
	fclose(f);
	config_defaults(&c);
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.listen, "127.0.0.2:9000");
	cr_assert_eq(c.fsync, RK_FSYNC_NEVER);
	f = fopen(path, "w");
	fputs("[limits]\nmax_keys = 5\n", f);
	fclose(f);
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), RK_EINVALID);
	cr_assert(strstr(err, "unknown setting"), "%s", err);
	unlink(path);
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), RK_EIO);
}
