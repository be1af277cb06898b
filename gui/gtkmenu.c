//go:build desktop && linux

#include <gtk/gtk.h>
#include <webkit2/webkit2.h>
#include "gtkmenu.h"

// Implemented in Go (gtkmenu_desktop.go).
extern void berthMenuActivated(int id);
extern int berthMenuRebuild(void);

static void on_activate(GtkMenuItem *item, gpointer data) {
	(void)item;
	berthMenuActivated(GPOINTER_TO_INT(data));
}

static GtkWidget *find_menubar_in(GtkWidget *w) {
	if (GTK_IS_MENU_BAR(w)) {
		return w;
	}
	if (!GTK_IS_CONTAINER(w)) {
		return NULL;
	}
	GList *children = gtk_container_get_children(GTK_CONTAINER(w));
	GtkWidget *found = NULL;
	for (GList *l = children; l != NULL && found == NULL; l = l->next) {
		found = find_menubar_in(GTK_WIDGET(l->data));
	}
	g_list_free(children);
	return found;
}

GtkWidget *berth_find_menubar(void) {
	GList *tops = gtk_window_list_toplevels();
	GtkWidget *found = NULL;
	for (GList *l = tops; l != NULL && found == NULL; l = l->next) {
		found = find_menubar_in(GTK_WIDGET(l->data));
	}
	g_list_free(tops);
	return found;
}

void berth_clear(GtkWidget *shell) {
	GList *children = gtk_container_get_children(GTK_CONTAINER(shell));
	for (GList *l = children; l != NULL; l = l->next) {
		gtk_widget_destroy(GTK_WIDGET(l->data));
	}
	g_list_free(children);
}

GtkWidget *berth_item(const char *label, int id, int disabled) {
	GtkWidget *it = gtk_menu_item_new_with_label(label);
	if (id >= 0) {
		g_signal_connect(it, "activate", G_CALLBACK(on_activate), GINT_TO_POINTER(id));
	}
	if (disabled) {
		gtk_widget_set_sensitive(it, FALSE);
	}
	return it;
}

GtkWidget *berth_separator(void) { return gtk_separator_menu_item_new(); }

GtkWidget *berth_menu(void) { return gtk_menu_new(); }

void berth_set_submenu(GtkWidget *item, GtkWidget *menu) {
	gtk_menu_item_set_submenu(GTK_MENU_ITEM(item), menu);
}

void berth_append(GtkWidget *shell, GtkWidget *item) {
	gtk_menu_shell_append(GTK_MENU_SHELL(shell), item);
}

void berth_show_all(GtkWidget *w) { gtk_widget_show_all(w); }

static gboolean rebuild(gpointer data) {
	(void)data;
	berthMenuRebuild();
	return G_SOURCE_REMOVE;
}

void berth_schedule_rebuild(void) { g_idle_add(rebuild, NULL); }

void berth_webkit_version(unsigned *major, unsigned *minor, unsigned *micro) {
	*major = webkit_get_major_version();
	*minor = webkit_get_minor_version();
	*micro = webkit_get_micro_version();
}
