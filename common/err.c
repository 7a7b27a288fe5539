#include "err.h"

#include <stddef.h>

struct err_row {
	int code;
	const char *name;
	const char *msg;
};

static const struct err_row err_table[] = {
#define RK_ERR_ROW(name, val, msg) {-(val), #name, msg},
	RK_ERRORS(RK_ERR_ROW)
#undef RK_ERR_ROW
};

static const struct err_row *err_find(int code)
{
	for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
		if (err_table[i].code == code)
			return &err_table[i];
	return NULL;
}

const char *rk_strerror(int code)
{
	const struct err_row *r = err_find(code);
	return r ? r->msg : "unknown error";
}

const char *rk_errname(int code)
{
	const struct err_row *r = err_find(code);
	return r ? r->name : "UNKNOWN_ERROR";
}

int rk_err_known(int code)
{
	return err_find(code) != NULL;
}
