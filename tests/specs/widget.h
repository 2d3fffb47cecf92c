/* widget: a small made-up vendor API, the fixture for cava's tests. */
#ifndef WIDGET_H
#define WIDGET_H

#include <stddef.h>

typedef struct widget_pool_s *widget_pool; /* opaque handles */
typedef struct widget_s *widget;

typedef enum widget_status {
  WIDGET_OK = 0,
  WIDGET_ERR_INVALID = -1,
  WIDGET_ERR_UNAVAILABLE = -2,
} widget_status;

typedef struct widget_point { int x, y; } widget_point;            /* flat: goes by value */
typedef struct widget_label { const char *text; size_t len; } widget_label; /* holds a pointer */

typedef void (*widget_event_fn)(int event, int value, void *user_data);
typedef int (*widget_compare_fn)(const void *a, const void *b);

widget_status widget_pool_create(const char *name, widget_pool *pool_out);
widget_status widget_pool_destroy(widget_pool pool);
widget_status widget_create(widget_pool pool, int kind, double scale, widget *widget_out);
widget_status widget_destroy(widget w);
widget_status widget_close(widget w); /* the old name of widget_destroy */
widget_status widget_write(widget w, const void *data, size_t size);
widget_status widget_read(widget w, void *data, size_t size, size_t *read_out);
widget_status widget_fill(widget w, const void *values, size_t n);
widget_status widget_move(widget w, widget_point to);
widget_status widget_get_position(widget w, widget_point *pos);
widget_status widget_set_label(widget w, const widget_label *label);
widget_status widget_set_tags(widget w, const char **strings, size_t count);
widget_status widget_set_table(widget w, const char ***cells, size_t rows, size_t cols);
widget_status widget_transfer(widget w, int upload, void *data, size_t size);
widget_status widget_on_event(widget w, widget_event_fn fn, void *user_data);
widget_status widget_sort(widget w, widget_compare_fn cmp);
widget_status widget_draw(widget w, unsigned frames);
widget_status widget_pool_share(widget_pool pool, int gl_object);
widget_status widget_logf(widget w, const char *fmt, ...);
const char *widget_name(widget w);
widget widget_pool_first(widget_pool pool);
int widget_count(widget_pool pool);
void widget_flush(widget_pool pool);

#endif
