// The menu bar of berth-desktop's window, rebuilt in place (Wails v2 on
// Linux does not replace its menu bar after the window is shown).
#ifndef BERTH_GTKMENU_H
#define BERTH_GTKMENU_H

#include <gtk/gtk.h>

GtkWidget *berth_find_menubar(void);
void berth_clear(GtkWidget *shell);
GtkWidget *berth_item(const char *label, int id, int disabled);
GtkWidget *berth_separator(void);
GtkWidget *berth_menu(void);
void berth_set_submenu(GtkWidget *item, GtkWidget *menu);
void berth_append(GtkWidget *shell, GtkWidget *item);
void berth_show_all(GtkWidget *w);
void berth_schedule_rebuild(void);
void berth_webkit_version(unsigned *major, unsigned *minor, unsigned *micro);

#endif
