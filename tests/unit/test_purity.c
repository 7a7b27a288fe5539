/* STYLE rule 1, checked: the protocol and storage-core files include only
 * common/ headers, their own folder's headers and the C library; libev,
 * sockets, OpenSSL and protobuf-c stay in node/, proto/, client/, tools/. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const forbidden[] = {
	"<ev.h>", "protobuf-c", "openssl/", "<sys/socket.h>", "<netinet/",
	"<arpa/", "<netdb.h>", "<pthread.h>", "<time.h>", "<sys/time.h>",
	"pb-c.h",
};

/* Files of the storage core that must stay free of sockets and libev;
 * they may use threads, files and the clock (they own the disk). */
static const char *const store_core[] = {"node/table.c", "node/logfmt.c",
					 "node/record.h", "node/table.h",
					 "node/logfmt.h", "common/crdt.c",
					 "common/crdt.h"};

static int check_file(const char *path, int allow_own_dir)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char line[512];
	int n = 0, lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (strncmp(line, "#include", 8) != 0)
			continue;
		for (size_t i = 0; i < sizeof(forbidden) / sizeof(*forbidden); i++)
			if (strstr(line, forbidden[i])) {
				cr_log_error("%s:%d: %s", path, lineno, line);
				n++;
			}
		(void)allow_own_dir;
	}
	fclose(f);
	return n;
}

static int check_dir(const char *dir, int *files)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", SOURCE_ROOT, dir);
	DIR *d = opendir(path);
	if (!d)
		return 0; /* the folder does not exist yet */
	int bad = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 3 || (strcmp(de->d_name + l - 2, ".c") &&
			      strcmp(de->d_name + l - 2, ".h")))
			continue;
		char file[1300];
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		bad += check_file(file, 1);
		(*files)++;
	}
	closedir(d);
	return bad;
}

Test(purity, protocol_modules_touch_no_io)
{
	int files = 0, bad = 0;
	bad += check_dir("ring", &files);
	bad += check_dir("gossip", &files);
	bad += check_dir("paxos", &files);
	bad += check_dir("repl", &files);
	for (size_t i = 0; i < sizeof(store_core) / sizeof(*store_core); i++) {
		char file[1024];
		snprintf(file, sizeof(file), "%s/%s", SOURCE_ROOT, store_core[i]);
		bad += check_file(file, 0);
		files++;
	}
	cr_assert_gt(files, 4, "the check saw too few files to mean anything");
	cr_assert_eq(bad, 0, "%d forbidden includes (see log)", bad);
}
