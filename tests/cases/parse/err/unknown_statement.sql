CREATE CONNECTION pg TO POSTGRES (url = 'postgres://localhost/shop');
CREATE SINK orders FROM pg INTO KAFKA;
